"""Every asset kind carries the KalturaAsset base fields, with sizes in the unit Kaltura uses.

Through the real KalturaClient against the seeded session sandbox: flavors, thumbnails,
captions and attachments all have ``sizeInBytes`` (bytes); ``size`` is kilobytes for flavors
and bytes for the other kinds (reference section 11.3); fields the emulator never fills come as
empty elements (the client reads a null int as None, a null string as "").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from KalturaClient.Plugins.Attachment import (
    KalturaAttachmentAssetFilter,
    KalturaAttachmentAssetService,
)
from KalturaClient.Plugins.Caption import KalturaCaptionAssetFilter, KalturaCaptionAssetService
from KalturaClient.Plugins.Core import (
    KalturaAssetFilter,
    KalturaFilterPager,
    KalturaFlavorAssetFilter,
)

BASE_FIELDS = ("id", "entryId", "partnerId", "version", "size", "tags", "fileExt", "createdAt",
               "updatedAt", "deletedAt", "description", "partnerData", "partnerDescription",
               "actualSourceAssetParamsIds", "sizeInBytes")
PAGE = KalturaFilterPager(pageSize=500)


def _with(kind: str, sandbox: Any) -> str:
    """A comma list of entry ids that have at least one asset of ``kind``."""
    table = getattr(sandbox.backend, f"{kind}_by_entry")
    return ",".join(list(table)[:200])


def _lister(kind: str, client: Any) -> Callable[[str], list[Any]]:
    if kind == "flavors":
        return lambda ids: client.flavorAsset.list(KalturaFlavorAssetFilter(entryIdIn=ids),
                                                   PAGE).objects
    if kind == "thumbs":
        return lambda ids: client.thumbAsset.list(KalturaAssetFilter(entryIdIn=ids),
                                                  PAGE).objects
    if kind == "captions":
        service = KalturaCaptionAssetService(client)
        return lambda ids: service.list(KalturaCaptionAssetFilter(entryIdIn=ids), PAGE).objects
    service = KalturaAttachmentAssetService(client)
    return lambda ids: service.list(KalturaAttachmentAssetFilter(entryIdIn=ids), PAGE).objects


@pytest.mark.parametrize(("kind", "type_name", "size_unit"), [
    ("flavors", "KalturaFlavorAsset", 1024),
    ("thumbs", "KalturaThumbAsset", 1),
    ("captions", "KalturaCaptionAsset", 1),
    ("attachments", "KalturaAttachmentAsset", 1),
])
def test_every_asset_kind_has_the_base_fields_and_its_size_unit(
    sandbox: Any, kaltura_client: Any, kind: str, type_name: str, size_unit: int
) -> None:
    assets = _lister(kind, kaltura_client)(_with(kind, sandbox))
    assert len(assets) > 10
    table = getattr(sandbox.backend, kind)
    for asset in assets:
        assert type(asset).__name__ == type_name
        held = table[asset.id]
        assert held.content is not None
        assert asset.sizeInBytes == held.content.size > 0
        assert asset.size == -(-asset.sizeInBytes // size_unit)  # KB rounded up, or bytes
        assert asset.entryId == held.entry_id and asset.partnerId == 100
        assert asset.version == 1 and asset.createdAt > 0 and asset.updatedAt >= 0
        assert asset.deletedAt is None  # deleted assets are never listed
        # Empty elements: the client reads a null string field as "".
        assert (asset.partnerData, asset.partnerDescription,
                asset.actualSourceAssetParamsIds) == ("", "", "")
        assert isinstance(asset.description, str)


@pytest.mark.parametrize("service", ["flavorasset", "thumbasset", "caption_captionasset",
                                     "attachment_attachmentasset"])
def test_null_base_fields_are_sent_as_empty_elements(sandbox: Any, kaltura_client: Any,
                                                     service: str) -> None:
    kind = {"flavorasset": "flavors", "thumbasset": "thumbs",
            "caption_captionasset": "captions"}.get(service, "attachments")
    body = requests.post(
        f"{sandbox.env()['KALTURA_SERVICE_URL']}/api_v3/service/{service}/action/list",
        json={"ks": kaltura_client.getKs(), "format": "2",
              "filter": {"objectType": "KalturaAssetFilter", "entryIdIn": _with(kind, sandbox)},
              "pager": {"objectType": "KalturaFilterPager", "pageSize": "1"}},
        timeout=30,
    ).text
    item = body.split("<item>", 1)[1]
    for field in BASE_FIELDS:
        assert f"<{field}>" in item, field
    for empty in ("deletedAt", "partnerData", "partnerDescription", "actualSourceAssetParamsIds"):
        assert f"<{empty}></{empty}>" in item
