"""Flavors, thumbnails, captions and attachments through the real client, error paths included."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from emu_api import Api, make_entry, upload
from KalturaClient.exceptions import KalturaException
from KalturaClient.Plugins.Attachment import (
    KalturaAttachmentAssetFilter,
    KalturaAttachmentAssetService,
)
from KalturaClient.Plugins.Caption import KalturaCaptionAssetFilter, KalturaCaptionAssetService
from KalturaClient.Plugins.Core import (
    KalturaAssetFilter,
    KalturaFilterPager,
    KalturaFlavorAssetFilter,
    KalturaThumbAsset,
    KalturaThumbParams,
    KalturaUploadedFileTokenResource,
    KalturaUrlResource,
)

from sandbox.kaltura.content import BytesContent
from sandbox.kaltura.records import AttachmentAsset, CaptionAsset, FlavorAsset, FlavorStatus


def error_code(call: Callable[[], object]) -> str:
    with pytest.raises(KalturaException) as err:
        call()
    return str(err.value.code)


def test_flavor_list_batches_by_entry_and_hides_deleted(api: Api) -> None:
    for n in range(1, 6):
        make_entry(api.backend, n)
    api.backend.flavors["0_f0000002"].status = FlavorStatus.DELETED
    ids = ",".join(f"0_e{n:07d}" for n in (1, 2, 3, 9))
    listed = api.client.flavorAsset.list(KalturaFlavorAssetFilter(entryIdIn=ids), None)
    assert [f.id for f in listed.objects] == ["0_f0000001", "0_f0000003"]
    assert listed.totalCount == 2
    assert listed.objects[0].isOriginal is True and listed.objects[0].sizeInBytes == 50_000
    paged = api.client.flavorAsset.list(KalturaAssetFilter(), KalturaFilterPager(pageSize=2,
                                                                                  pageIndex=2))
    assert paged.totalCount == 4 and [f.id for f in paged.objects] == ["0_f0000004",
                                                                        "0_f0000005"]
    by_status = api.client.flavorAsset.list(KalturaFlavorAssetFilter(statusIn="1"), None)
    assert by_status.objects == []


def test_flavor_get_url_downloads_the_bytes(api: Api) -> None:
    make_entry(api.backend, 1)
    flavor = api.client.flavorAsset.get("0_f0000001")
    assert flavor.entryId == "0_e0000001" and flavor.flavorParamsId == 0
    url = api.client.flavorAsset.getUrl(flavor.id)
    assert url == f"{api.server.url}/p/100/sp/10000/download/flavor/0_f0000001/a.mp4"
    body = requests.get(url, timeout=10).content
    assert body == api.backend.flavor_content(flavor.id).read(0, 50_000)


def test_flavor_errors(api: Api) -> None:
    make_entry(api.backend, 1)
    c = api.client
    assert error_code(lambda: c.flavorAsset.get("0_nothere")) == "FLAVOR_ASSET_ID_NOT_FOUND"
    assert error_code(lambda: c.flavorAsset.getUrl("0_nothere")) == "FLAVOR_ASSET_ID_NOT_FOUND"
    api.backend.flavors["0_f0000001"].status = FlavorStatus.CONVERTING
    assert error_code(lambda: c.flavorAsset.getUrl("0_f0000001")) == "FLAVOR_ASSET_IS_NOT_READY"
    assert error_code(lambda: c.flavorAsset.convert("0_e0000001", 301)) == \
        "ORIGINAL_FLAVOR_ASSET_IS_MISSING"
    api.backend.flavors["0_f0000001"].status = FlavorStatus.READY
    assert error_code(lambda: c.flavorAsset.reconvert("0_f0000001")) == \
        "FLAVOR_ASSET_RECONVERT_ORIGINAL"


def test_flavor_delete_hides_it_even_the_original(api: Api) -> None:
    make_entry(api.backend, 1)
    api.client.flavorAsset.delete("0_f0000001")
    listed = api.client.flavorAsset.list(KalturaAssetFilter(entryIdEqual="0_e0000001"), None)
    assert listed.objects == [] and listed.totalCount == 0
    assert error_code(lambda: api.client.flavorAsset.get("0_f0000001")) == \
        "FLAVOR_ASSET_ID_NOT_FOUND"


def test_convert_and_reconvert_take_the_conversion_delay(api: Api) -> None:
    make_entry(api.backend, 1)
    c = api.client
    c.flavorAsset.convert("0_e0000001", 302)
    flt = KalturaFlavorAssetFilter(entryIdEqual="0_e0000001", flavorParamsIdEqual=302)
    queued = c.flavorAsset.list(flt, None).objects
    assert [f.status.getValue() for f in queued] == [FlavorStatus.CONVERTING]
    api.advance(61)
    derived = c.flavorAsset.list(flt, None).objects[0]
    assert derived.status.getValue() == FlavorStatus.READY
    assert derived.sizeInBytes < 50_000
    assert c.media.get("0_e0000001").flavorParamsIds == "0,302"
    c.flavorAsset.reconvert(derived.id)
    assert c.flavorAsset.get(derived.id).status.getValue() == FlavorStatus.CONVERTING
    api.advance(61)
    assert c.flavorAsset.get(derived.id).status.getValue() == FlavorStatus.READY


def thumbs(api: Api, entry_id: str) -> list:
    return api.client.thumbAsset.list(KalturaAssetFilter(entryIdEqual=entry_id), None).objects


def test_thumb_generate_set_default_and_delete(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    c = api.client
    made = c.thumbAsset.generate(entry.id, KalturaThumbParams(videoOffset=12))
    assert type(made).__name__ == "KalturaThumbAsset" and made.status.getValue() == 2
    assert "default_thumb" not in made.tags
    c.thumbAsset.setAsDefault(made.id)
    by_id = {t.id: t for t in thumbs(api, entry.id)}
    assert "default_thumb" in by_id[made.id].tags
    assert "default_thumb" not in by_id["0_t0000001"].tags
    assert c.media.get(entry.id).thumbnailUrl == c.thumbAsset.getUrl(made.id)
    assert error_code(lambda: c.thumbAsset.delete(made.id)) == "THUMB_ASSET_IS_DEFAULT"
    c.thumbAsset.delete("0_t0000001")
    assert [t.id for t in thumbs(api, entry.id)] == [made.id]
    assert error_code(lambda: c.thumbAsset.get("0_t0000001")) == "THUMB_ASSET_ID_NOT_FOUND"


def test_thumb_generate_needs_a_ready_source(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    api.backend.flavors["0_f0000001"].status = FlavorStatus.CONVERTING
    code = error_code(lambda: api.client.thumbAsset.generate(entry.id, KalturaThumbParams()))
    assert code == "THUMB_ASSET_IS_NOT_READY"


def test_legacy_update_thumbnail_makes_a_new_default(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    updated = api.client.media.updateThumbnail(entry.id, 5)
    default = [t for t in thumbs(api, entry.id) if "default_thumb" in t.tags]
    assert len(default) == 1 and default[0].id != "0_t0000001"
    assert updated.thumbnailUrl.endswith(f"/thumb/{default[0].id}/a.jpg")


def test_thumb_add_and_set_content_from_an_upload(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    c = api.client
    added = c.thumbAsset.add(entry.id, KalturaThumbAsset(tags="archived"))
    assert added.status.getValue() == 0
    assert error_code(lambda: c.thumbAsset.getUrl(added.id)) == "THUMB_ASSET_IS_NOT_READY"
    token = upload(api, b"\xff\xd8 jpeg bytes \xff\xd9", "real.jpg")
    filled = c.thumbAsset.setContent(added.id, KalturaUploadedFileTokenResource(token=token))
    assert filled.status.getValue() == 2
    assert requests.get(c.thumbAsset.getUrl(added.id), timeout=10).content == \
        b"\xff\xd8 jpeg bytes \xff\xd9"


def test_thumb_add_from_url_and_set_content_from_url(
    api: Api, file_server: Callable[[str, bytes], str]
) -> None:
    entry = make_entry(api.backend, 1)
    c = api.client
    url = file_server("/thumb.jpg", b"thumb from s3")
    imported = c.thumbAsset.addFromUrl(entry.id, url)
    api.backend.join_imports()
    assert c.thumbAsset.get(imported.id).status.getValue() == 2
    added = c.thumbAsset.add(entry.id, KalturaThumbAsset())
    c.thumbAsset.setContent(added.id, KalturaUrlResource(url=url + ".missing"))
    api.backend.join_imports()
    assert c.thumbAsset.get(added.id).status.getValue() == -1
    assert requests.get(c.thumbAsset.getUrl(imported.id), timeout=10).content == b"thumb from s3"


def insert_side_assets(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    pid = api.backend.partner.id
    caption = CaptionAsset(id="0_cap00001", entry_id=entry.id, partner_id=pid,
                           content=BytesContent(b"1\n00:00:01,000 --> 00:00:02,000\nHi\n"),
                           size=34, size_in_bytes=34, language="French", language_code="fr",
                           label="Français")
    attachment = AttachmentAsset(id="0_att00001", entry_id=entry.id, partner_id=pid,
                                 content=BytesContent(b"%PDF-1.4 slides"), size=15,
                                 size_in_bytes=15, filename="slides.pdf", title="Slides")
    api.backend.add_asset(caption)
    api.backend.add_asset(attachment)


def test_captions_list_get_and_url(api: Api) -> None:
    insert_side_assets(api)
    captions = KalturaCaptionAssetService(api.client)
    listed = captions.list(KalturaCaptionAssetFilter(entryIdEqual="0_e0000001"), None)
    assert [(x.id, x.language.getValue(), x.label) for x in listed.objects] == [
        ("0_cap00001", "French", "Français")]
    assert captions.get("0_cap00001").fileExt == "srt"
    url = captions.getUrl("0_cap00001")
    assert url.endswith("/download/caption/0_cap00001/a.srt")
    assert requests.get(url, timeout=10).content.startswith(b"1\n00:00:01")
    assert error_code(lambda: captions.get("0_nope")) == "CAPTION_ASSET_ID_NOT_FOUND"


def test_attachments_list_get_and_url(api: Api) -> None:
    insert_side_assets(api)
    attachments = KalturaAttachmentAssetService(api.client)
    listed = attachments.list(KalturaAttachmentAssetFilter(entryIdIn="0_e0000001"), None)
    assert [(x.id, x.filename, x.title) for x in listed.objects] == [
        ("0_att00001", "slides.pdf", "Slides")]
    assert attachments.get("0_att00001").size == 15
    url = attachments.getUrl("0_att00001")
    assert requests.get(url, timeout=10).content == b"%PDF-1.4 slides"
    assert error_code(lambda: attachments.getUrl("0_nope")) == \
        "ATTACHMENT_ASSET_ID_NOT_FOUND"


def test_download_content_errors_for_the_transport(api: Api) -> None:
    make_entry(api.backend, 1)
    api.backend.add_asset(FlavorAsset(id="0_conv0001", entry_id="0_e0000001", partner_id=100,
                                      status=FlavorStatus.CONVERTING))
    with pytest.raises(Exception) as err:
        api.backend.flavor_content("0_conv0001")
    assert getattr(err.value, "code", "") == "FLAVOR_ASSET_IS_NOT_READY"
    with pytest.raises(Exception) as err:
        api.backend.asset_content("caption", "0_none")
    assert getattr(err.value, "code", "") == "CAPTION_ASSET_ID_NOT_FOUND"


def test_flavor_list_by_ids(api: Api) -> None:
    for n in range(1, 4):
        make_entry(api.backend, n)
    c = api.client
    by_in = c.flavorAsset.list(KalturaFlavorAssetFilter(idIn="0_f0000003,0_f0000001,0_nope"),
                               None)
    assert sorted(f.id for f in by_in.objects) == ["0_f0000001", "0_f0000003"]
    by_eq = c.flavorAsset.list(KalturaFlavorAssetFilter(idEqual="0_f0000002"), None)
    assert [f.id for f in by_eq.objects] == ["0_f0000002"]


def test_insert_takes_the_default_thumb_from_its_tag(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    api.backend.thumbs["0_t0000001"].tags = "archived, default_thumb"
    entry.thumbnail_url = ""
    copy = type(api.backend)()
    copy.insert(entry, thumbs=[api.backend.thumbs["0_t0000001"]])
    assert copy.get_entry(entry.id).thumbnail_url.endswith("/thumb/0_t0000001/a.jpg")


def test_flavor_assets_with_params_lists_assets_then_unused_params(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    pid = api.backend.partner.id
    for fid, params_id, status in (("0_conv0301", 301, FlavorStatus.CONVERTING),
                                   ("0_gone0302", 302, FlavorStatus.DELETED),
                                   ("0_temp0303", 303, FlavorStatus.TEMP),
                                   ("0_odd00999", 999, FlavorStatus.ERROR)):
        api.backend.add_asset(FlavorAsset(id=fid, entry_id=entry.id, partner_id=pid,
                                          flavor_params_id=params_id, status=status,
                                          size=3, size_in_bytes=3000))
    items = api.client.flavorAsset.getFlavorAssetsWithParams(entry.id)
    assert all(type(i).__name__ == "KalturaFlavorAssetWithParams" for i in items)
    assert all(i.entryId == entry.id for i in items)
    pairs = [(i.flavorAsset.id if i.flavorAsset else None,
              i.flavorParams.id if i.flavorParams else None) for i in items]
    # Deleted and temp assets are left out; 999 has no params; params without an asset follow.
    assert pairs == [("0_f0000001", 0), ("0_conv0301", 301), ("0_odd00999", None),
                     (None, 302), (None, 303), (None, 304)]
    source = items[0]
    assert source.flavorAsset.sizeInBytes == 50_000 and source.flavorAsset.size == 49
    assert source.flavorParams.name == "Source" and "source" in source.flavorParams.tags
    assert items[1].flavorAsset.status.getValue() == FlavorStatus.CONVERTING
    assert (items[1].flavorParams.width, items[1].flavorParams.height) == (1280, 720)
    # What the Princeton tool sums: the KB of the items that have an asset.
    assert sum(i.flavorAsset.size for i in items if i.flavorAsset is not None) == 49 + 3 + 3


def test_flavor_assets_with_params_of_an_emptied_or_unknown_entry(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    api.client.flavorAsset.delete("0_f0000001")
    items = api.client.flavorAsset.getFlavorAssetsWithParams(entry.id)
    assert [i.flavorAsset for i in items] == [None] * 5
    assert [i.flavorParams.id for i in items] == [0, 301, 302, 303, 304]
    assert error_code(lambda: api.client.flavorAsset.getFlavorAssetsWithParams("0_nothere")) \
        == "ENTRY_ID_NOT_FOUND"
    api.client.media.delete(entry.id)
    assert error_code(lambda: api.client.flavorAsset.getFlavorAssetsWithParams(entry.id)) \
        == "ENTRY_ID_NOT_FOUND"
