"""The real models behind raw HTTP clients: form-encoded bodies, JSON answers, multirequest."""

from __future__ import annotations

import requests
from emu_api import Api, make_entry
from KalturaClient.Plugins.Core import KalturaFlavorAssetFilter, KalturaMediaEntryFilter


def test_form_encoded_list_with_json_format(api: Api) -> None:
    for n in range(1, 4):
        make_entry(api.backend, n, tags="archived_to_s3" if n != 2 else "")
    form = {
        "ks": api.client.getKs(), "format": "1",
        "filter[objectType]": "KalturaMediaEntryFilter", "filter[tagsLike]": "archived_to_s3",
        "filter[orderBy]": "-createdAt", "pager[pageSize]": "1", "pager[pageIndex]": "2",
    }
    answer = requests.post(f"{api.server.url}/api_v3/service/media/action/list", data=form,
                           timeout=10).json()
    assert answer["objectType"] == "KalturaMediaListResponse"
    assert answer["totalCount"] == 2
    assert [e["id"] for e in answer["objects"]] == ["0_e0000001"]


def test_multirequest_chains_an_entry_list_into_a_flavor_list(api: Api) -> None:
    make_entry(api.backend, 1)
    make_entry(api.backend, 2)
    client = api.client
    client.startMultiRequest()
    client.media.list(KalturaMediaEntryFilter(orderBy="+createdAt"), None)
    client.flavorAsset.list(KalturaFlavorAssetFilter(entryIdEqual="{1:result:objects:1:id}"))
    client.media.get("0_missing0")
    entries, flavors, missing = client.doMultiRequest()
    assert [e.id for e in entries.objects] == ["0_e0000001", "0_e0000002"]
    assert [f.id for f in flavors.objects] == ["0_f0000002"]
    assert missing.code == "ENTRY_ID_NOT_FOUND"
