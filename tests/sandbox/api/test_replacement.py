"""Content replacement end to end through the real client: tokens, URLs, approval, cancel, fail.

Conversions take CONVERSION_DELAY seconds on the backend clock; tests advance the clock instead of
sleeping. URL imports run in a thread: ``backend.join_imports()`` waits for them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from emu_api import Api, make_entry, upload
from KalturaClient.exceptions import KalturaException
from KalturaClient.Plugins.Core import (
    KalturaAssetFilter,
    KalturaFlavorAssetFilter,
    KalturaMediaEntry,
    KalturaMediaEntryFilter,
    KalturaUploadedFileTokenResource,
    KalturaUrlResource,
)

from sandbox.kaltura.records import EntryStatus, ReplacementStatus

PLACEHOLDER = b"placeholder video " * 4096


def token_resource(api: Api, data: bytes = PLACEHOLDER) -> KalturaUploadedFileTokenResource:
    return KalturaUploadedFileTokenResource(token=upload(api, data))


def flavors(api: Api, entry_id: str) -> list:
    return api.client.flavorAsset.list(KalturaAssetFilter(entryIdEqual=entry_id), None).objects


def test_replacement_swaps_after_the_conversion_delay(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    started = api.client.media.updateContent(entry.id, token_resource(api))
    temp_id = started.replacingEntryId
    assert started.replacementStatus.getValue() == str(ReplacementStatus.APPROVED_BUT_NOT_READY)
    temp = api.client.media.get(temp_id)
    assert temp.replacedEntryId == entry.id and temp.displayInSearch.getValue() == -1
    listed = api.client.media.list(KalturaMediaEntryFilter(statusIn="1,2"), None)
    assert temp_id not in [e.id for e in listed.objects]  # temp entries are hidden
    assert [f.id for f in flavors(api, entry.id)] == ["0_f0000001"]  # old content still there

    api.advance(30)
    assert api.client.media.get(entry.id).replacingEntryId == temp_id  # still converting

    api.advance(31)
    swapped = api.client.media.get(entry.id)
    assert swapped.replacingEntryId in (None, "")
    assert swapped.replacementStatus.getValue() == "0"
    assert swapped.status.getValue() == "2"
    new = flavors(api, entry.id)
    source = [f for f in new if f.isOriginal]
    assert len(source) == 1 and source[0].sizeInBytes == len(PLACEHOLDER)
    assert source[0].flavorParamsId == 0 and "source" in source[0].tags
    assert sorted(f.flavorParamsId for f in new) == [0, 301, 302, 303]
    assert swapped.flavorParamsIds == "0,301,302,303"
    assert all(f.sizeInBytes < len(PLACEHOLDER) for f in new if not f.isOriginal)
    assert api.backend.flavors["0_f0000001"].status == 3  # the old flavor is deleted
    body = requests.get(api.client.flavorAsset.getUrl(source[0].id), timeout=10).content
    assert body == PLACEHOLDER
    with pytest.raises(KalturaException):
        api.client.media.get(temp_id)


def test_swap_makes_the_generated_thumbnail_the_default(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    api.client.media.updateContent(entry.id, token_resource(api))
    api.advance(61)
    thumbs = api.client.thumbAsset.list(KalturaAssetFilter(entryIdEqual=entry.id), None).objects
    default = [t for t in thumbs if "default_thumb" in t.tags]
    assert len(thumbs) == 2 and len(default) == 1 and default[0].id != "0_t0000001"
    assert api.client.media.get(entry.id).thumbnailUrl.endswith(f"/thumb/{default[0].id}/a.jpg")


def test_second_update_content_is_refused_during_a_replacement(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    api.client.media.updateContent(entry.id, token_resource(api))
    with pytest.raises(KalturaException) as err:
        api.client.media.updateContent(entry.id, token_resource(api))
    assert err.value.code == "ENTRY_REPLACEMENT_ALREADY_EXISTS"


def test_approval_mode_waits_for_approve_replace(api: Api) -> None:
    api.backend.partner.replacement_requires_approval = True
    entry = make_entry(api.backend, 1)
    started = api.client.media.updateContent(entry.id, token_resource(api))
    assert started.replacementStatus.getValue() == str(ReplacementStatus.NOT_READY_AND_NOT_APPROVED)
    api.advance(61)
    waiting = api.client.media.get(entry.id)
    assert waiting.replacementStatus.getValue() == str(ReplacementStatus.READY_BUT_NOT_APPROVED)
    assert [f.id for f in flavors(api, entry.id)] == ["0_f0000001"]
    approved = api.client.media.approveReplace(entry.id)
    assert approved.replacementStatus.getValue() == "0"
    assert len(flavors(api, entry.id)) == 4


def test_approving_before_ready_swaps_when_ready(api: Api) -> None:
    api.backend.partner.replacement_requires_approval = True
    entry = make_entry(api.backend, 1)
    api.client.media.updateContent(entry.id, token_resource(api))
    early = api.client.media.approveReplace(entry.id)
    assert early.replacementStatus.getValue() == str(ReplacementStatus.APPROVED_BUT_NOT_READY)
    api.advance(61)
    assert api.client.media.get(entry.id).replacementStatus.getValue() == "0"


def test_approve_without_replacement_is_refused(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    with pytest.raises(KalturaException) as err:
        api.client.media.approveReplace(entry.id)
    assert err.value.code == "ENTRY_ID_NOT_REPLACED"


def test_cancel_replace_drops_the_temp_entry(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    temp_id = api.client.media.updateContent(entry.id, token_resource(api)).replacingEntryId
    cancelled = api.client.media.cancelReplace(entry.id)
    assert cancelled.replacingEntryId in (None, "")
    assert cancelled.replacementStatus.getValue() == "0"
    assert api.backend.get_entry(temp_id).status == EntryStatus.DELETED
    api.advance(61)
    assert [f.id for f in flavors(api, entry.id)] == ["0_f0000001"]
    api.client.media.updateContent(entry.id, token_resource(api))  # a new one may start


def test_url_resource_is_fetched_by_the_emulator(api: Api,
                                                 file_server: Callable[[str, bytes], str]) -> None:
    entry = make_entry(api.backend, 1)
    url = file_server("/restore/video.mov?X-Amz-Signature=abc", b"restored bytes" * 1000)
    api.client.media.updateContent(entry.id, KalturaUrlResource(url=url))
    api.ready()
    source = [f for f in flavors(api, entry.id) if f.isOriginal][0]
    assert source.sizeInBytes == 14000 and source.fileExt == "mov"
    assert api.client.media.get(entry.id).replacementStatus.getValue() == "0"


def test_url_resource_may_be_the_emulators_own_download_url(api: Api) -> None:
    donor = make_entry(api.backend, 1, size=70_000)
    entry = make_entry(api.backend, 2)
    url = api.client.flavorAsset.getUrl(f"0_f{1:07d}")
    api.client.media.updateContent(entry.id, KalturaUrlResource(url=url))
    api.ready()
    source = [f for f in flavors(api, entry.id) if f.isOriginal][0]
    assert source.sizeInBytes == 70_000
    assert api.backend.flavor_content(source.id).read(0, 70_000) == \
        api.backend.flavor_content("0_f0000001").read(0, 70_000)
    assert donor.status == EntryStatus.READY


def test_a_bad_url_fails_the_replacement(api: Api,
                                         file_server: Callable[[str, bytes], str]) -> None:
    entry = make_entry(api.backend, 1)
    url = file_server("/exists", b"x").replace("/exists", "/missing")
    temp_id = api.client.media.updateContent(entry.id, KalturaUrlResource(url=url)).replacingEntryId
    api.backend.join_imports()
    failed = api.client.media.get(entry.id)
    assert failed.replacementStatus.getValue() == str(ReplacementStatus.FAILED)
    assert api.client.media.get(temp_id).status.getValue() == str(EntryStatus.ERROR_IMPORTING)
    assert [f.id for f in flavors(api, entry.id)] == ["0_f0000001"]  # nothing lost
    with pytest.raises(KalturaException) as err:
        api.client.media.updateContent(entry.id, token_resource(api))
    assert err.value.code == "ENTRY_REPLACEMENT_ALREADY_EXISTS"
    api.client.media.cancelReplace(entry.id)
    api.client.media.updateContent(entry.id, token_resource(api))


def test_empty_content_fails_conversion(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    api.client.media.updateContent(entry.id, token_resource(api, b""))
    api.advance(61)
    assert api.client.media.get(entry.id).replacementStatus.getValue() == str(
        ReplacementStatus.FAILED)


def test_a_used_or_unfinished_token_is_refused(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    resource = token_resource(api)
    api.client.media.updateContent(entry.id, resource)
    api.client.media.cancelReplace(entry.id)
    with pytest.raises(KalturaException) as err:
        api.client.media.updateContent(entry.id, resource)  # the token is CLOSED now
    assert err.value.code == "UPLOAD_TOKEN_INVALID_STATUS_FOR_ADD_ENTRY"
    with pytest.raises(KalturaException) as err:
        api.client.media.updateContent(entry.id, KalturaUploadedFileTokenResource(token="0_none"))
    assert err.value.code == "UPLOAD_TOKEN_NOT_FOUND"
    assert api.client.media.get(entry.id).replacingEntryId in (None, "")


def test_no_content_entry_takes_content_directly(api: Api) -> None:
    added = api.client.media.add(KalturaMediaEntry(name="new", mediaType=1))
    converting = api.client.media.addContent(added.id, token_resource(api))
    assert converting.status.getValue() == str(EntryStatus.PRECONVERT)
    assert converting.replacingEntryId in (None, "")
    source = api.client.flavorAsset.list(KalturaFlavorAssetFilter(entryIdEqual=added.id)).objects
    assert [f.status.getValue() for f in source] == [1]  # converting
    api.advance(61)
    ready = api.client.media.get(added.id)
    assert ready.status.getValue() == "2"
    assert ready.msDuration > 0 and ready.duration == round(ready.msDuration / 1000)
    assert ready.thumbnailUrl.endswith("/a.jpg")


def test_update_content_on_a_no_content_entry_attaches_directly(api: Api) -> None:
    added = api.client.media.add(KalturaMediaEntry(name="new", mediaType=1))
    entry = api.client.media.updateContent(added.id, token_resource(api))
    assert entry.replacingEntryId in (None, "")
    assert entry.status.getValue() == str(EntryStatus.PRECONVERT)


def test_add_content_on_an_entry_with_content_is_refused(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    with pytest.raises(KalturaException) as err:
        api.client.media.addContent(entry.id, token_resource(api))
    assert err.value.code == "ENTRY_ALREADY_WITH_CONTENT"


def test_deleting_every_flavor_leaves_no_content_and_add_content_is_accepted(api: Api) -> None:
    # The Princeton tool's replace: delete every flavor (the original too), then addContent.
    entry = make_entry(api.backend, 1)
    api.backend.convert_flavor(entry.id, 301)
    api.advance(61)
    before = api.client.media.get(entry.id)
    assert sorted(f.flavorParamsId for f in flavors(api, entry.id)) == [0, 301]

    original = next(f for f in flavors(api, entry.id) if f.isOriginal)
    api.client.flavorAsset.delete(original.id)
    # A READY derived flavor is left: the entry stays READY (reference §11.4, corollary).
    kept = api.client.media.get(entry.id)
    assert kept.status.getValue() == str(EntryStatus.READY)
    assert kept.flavorParamsIds == "301"

    for flavor in flavors(api, entry.id):
        api.client.flavorAsset.delete(flavor.id)
    emptied = api.client.media.get(entry.id)
    assert emptied.status.getValue() == str(EntryStatus.NO_CONTENT)
    assert emptied.flavorParamsIds in (None, "")
    assert emptied.updatedAt > before.updatedAt
    # NO_CONTENT entries are not READY, so the default listing no longer shows it.
    listed = api.client.media.list(KalturaMediaEntryFilter(idIn=entry.id), None).objects
    assert [e.id for e in listed] == []

    converting = api.client.media.addContent(entry.id, token_resource(api))
    assert converting.status.getValue() == str(EntryStatus.PRECONVERT)
    api.advance(61)
    back = api.client.media.get(entry.id)
    assert back.status.getValue() == str(EntryStatus.READY)
    source = [f for f in flavors(api, entry.id) if f.isOriginal]
    assert [f.sizeInBytes for f in source] == [len(PLACEHOLDER)]
