"""Detached response profiles and ignoreNull, as Kaltura answers them (sandbox/kaltura/wire.py).

kaltura/server api_v3/lib/types/KalturaObject.php fills only a profile's INCLUDE_FIELDS (or all
but its EXCLUDE_FIELDS) of each object a call answers; the rest stay null, which the XML writes
as empty elements unless the request says ``ignoreNull=1`` (KalturaXmlSerializer.php).
"""

from __future__ import annotations

import re

import requests
from emu_api import Api, make_entry
from KalturaClient.Plugins.Core import (
    KalturaDetachedResponseProfile,
    KalturaFilterPager,
    KalturaFlavorAssetFilter,
    KalturaMediaEntryFilter,
    KalturaResponseProfileType,
)


def _profile(kind: int, fields: str) -> KalturaDetachedResponseProfile:
    profile = KalturaDetachedResponseProfile()
    profile.type = kind
    profile.fields = fields
    return profile


def _raw_list(api: Api, **extra: str) -> str:
    form = {"ks": api.client.getKs(), "filter[objectType]": "KalturaMediaEntryFilter",
            "filter[orderBy]": "+createdAt", **extra}
    return requests.post(f"{api.server.url}/api_v3/service/media/action/list", data=form,
                         timeout=10).text


def test_include_fields_fills_only_those_and_ignore_null_leaves_the_rest_out(api: Api) -> None:
    for n in (1, 2):
        make_entry(api.backend, n, tags="lecture")
    client = api.client
    client.setResponseProfile(_profile(KalturaResponseProfileType.INCLUDE_FIELDS, "id, name"))
    client.clientConfiguration["ignoreNull"] = 1
    try:
        answer = client.media.list(KalturaMediaEntryFilter(orderBy="+createdAt"),
                                   KalturaFilterPager(pageSize=500))
    finally:
        client.requestConfiguration.pop("responseProfile", None)
        client.clientConfiguration.pop("ignoreNull", None)
    assert answer.totalCount == 2  # the list response itself is never shaped
    assert [e.id for e in answer.objects] == ["0_e0000001", "0_e0000002"]
    assert all(e.name for e in answer.objects)
    assert all(e.tags is NotImplemented for e in answer.objects)  # never sent
    assert type(answer.objects[0]).__name__ == "KalturaMediaEntry"  # objectType always is


def test_without_ignore_null_the_fields_left_out_are_written_empty(api: Api) -> None:
    make_entry(api.backend, 1, tags="lecture")
    text = _raw_list(api, **{"responseProfile[objectType]": "KalturaDetachedResponseProfile",
                             "responseProfile[type]": "1", "responseProfile[fields]": "id"})
    assert "<tags></tags>" in text and "<id>0_e0000001</id>" in text
    skipped = _raw_list(api, ignoreNull="1",
                        **{"responseProfile[objectType]": "KalturaDetachedResponseProfile",
                           "responseProfile[type]": "1", "responseProfile[fields]": "id"})
    item = re.search(r"<objects><item>(.*?)</item>", skipped)
    assert item is not None
    assert item.group(1) == "<objectType>KalturaMediaEntry</objectType><id>0_e0000001</id>"
    # Without a profile, ignoreNull still drops what is null.
    assert "<replacingEntryId>" not in _raw_list(api, ignoreNull="1")
    assert "<replacingEntryId></replacingEntryId>" in _raw_list(api)


def test_exclude_fields_fills_all_but_those_and_json_drops_them(api: Api) -> None:
    make_entry(api.backend, 1, tags="lecture")
    form = {"ks": api.client.getKs(), "format": "1", "entryId": "0_e0000001",
            "responseProfile[objectType]": "KalturaDetachedResponseProfile",
            "responseProfile[type]": "2", "responseProfile[fields]": "tags,name"}
    answer = requests.post(f"{api.server.url}/api_v3/service/media/action/get", data=form,
                           timeout=10).json()
    assert answer["id"] == "0_e0000001" and answer["objectType"] == "KalturaMediaEntry"
    assert "tags" not in answer and "name" not in answer and "createdAt" in answer


def test_each_call_of_a_multirequest_has_its_own_profile(api: Api) -> None:
    make_entry(api.backend, 1)
    client = api.client
    client.startMultiRequest()
    client.setResponseProfile(_profile(KalturaResponseProfileType.INCLUDE_FIELDS, "id"))
    client.media.list(KalturaMediaEntryFilter(orderBy="+createdAt"), None)
    client.requestConfiguration.pop("responseProfile")
    client.flavorAsset.list(KalturaFlavorAssetFilter(entryIdEqual="{1:result:objects:0:id}"))
    entries, flavors = client.doMultiRequest()
    assert entries.objects[0].id == "0_e0000001"
    assert entries.objects[0].name in ("", NotImplemented)  # filled only under its profile
    assert [f.id for f in flavors.objects] == ["0_f0000001"]  # a reference reads the shaped id
    assert flavors.objects[0].sizeInBytes not in ("", NotImplemented, None)
