"""An entry's status follows its content, and what addContent / updateContent accept in each.

Reference sections 8 and 11.4: with no READY flavor left the entry is NO_CONTENT (7) in the same
request; media.addContent is accepted only then (else ENTRY_ALREADY_WITH_CONTENT); updateContent
takes the content directly on a NO_CONTENT entry and through a replacement in any other status.
"""

from __future__ import annotations

import pytest
from emu_api import Api, make_entry, upload
from KalturaClient.exceptions import KalturaException
from KalturaClient.Plugins.Core import (
    KalturaAssetFilter,
    KalturaMediaEntry,
    KalturaUploadedFileTokenResource,
)

from sandbox.kaltura.records import EntryStatus, FlavorAsset, FlavorStatus, UploadTokenStatus

CONTENT = b"new content " * 1000
WITH_CONTENT = (EntryStatus.READY, EntryStatus.PRECONVERT, EntryStatus.IMPORT,
                EntryStatus.ERROR_CONVERTING, EntryStatus.ERROR_IMPORTING, EntryStatus.PENDING,
                EntryStatus.MODERATE, EntryStatus.BLOCKED)


def resource(api: Api) -> KalturaUploadedFileTokenResource:
    return KalturaUploadedFileTokenResource(token=upload(api, CONTENT))


def status(api: Api, entry_id: str) -> int:
    return int(api.client.media.get(entry_id).status.getValue())


@pytest.mark.parametrize("entry_status", WITH_CONTENT)
def test_add_content_is_refused_in_every_status_but_no_content(api: Api,
                                                               entry_status: int) -> None:
    entry = make_entry(api.backend, 1, status=entry_status)
    offered = resource(api)
    with pytest.raises(KalturaException) as caught:
        api.client.media.addContent(entry.id, offered)
    assert (caught.value.code, caught.value.message) == (
        "ENTRY_ALREADY_WITH_CONTENT", "Entry already associated with content")
    # Refused before the resource is touched: the token is still there to use.
    assert api.backend.tokens[offered.token].status == UploadTokenStatus.FULL_UPLOAD
    assert status(api, entry.id) == entry_status


def test_add_content_without_a_resource_returns_the_entry_unchanged(api: Api) -> None:
    entry = api.client.media.add(KalturaMediaEntry(name="empty", mediaType=1))
    returned = api.client.media.addContent(entry.id)
    assert returned.id == entry.id and returned.status.getValue() == str(EntryStatus.NO_CONTENT)


@pytest.mark.parametrize("call", ["addContent", "updateContent"])
def test_content_for_a_deleted_entry_is_entry_not_found(api: Api, call: str) -> None:
    entry = make_entry(api.backend, 1)
    api.client.media.delete(entry.id)
    with pytest.raises(KalturaException) as caught:
        getattr(api.client.media, call)(entry.id, resource(api))
    assert caught.value.code == "ENTRY_ID_NOT_FOUND"


@pytest.mark.parametrize(("entry_status", "replaced"), [
    (EntryStatus.NO_CONTENT, False),
    (EntryStatus.READY, True),
    (EntryStatus.ERROR_CONVERTING, True),
    (EntryStatus.PENDING, True),
])
def test_update_content_is_direct_only_on_a_no_content_entry(api: Api, entry_status: int,
                                                             replaced: bool) -> None:
    if entry_status == EntryStatus.NO_CONTENT:
        entry = make_entry(api.backend, 1)
        api.client.flavorAsset.delete("0_f0000001")  # as the Princeton tool empties an entry
    else:
        entry = make_entry(api.backend, 1, status=entry_status)
    answered = api.client.media.updateContent(entry.id, resource(api))
    assert bool(answered.replacingEntryId) is replaced
    if not replaced:
        assert answered.status.getValue() == str(EntryStatus.PRECONVERT)
    api.ready()
    assert status(api, entry.id) == EntryStatus.READY
    sources = [f for f in api.client.flavorAsset.list(KalturaAssetFilter(entryIdEqual=entry.id),
                                                      None).objects if f.isOriginal]
    assert [f.sizeInBytes for f in sources] == [len(CONTENT)]


def test_a_flavor_still_converting_is_no_content(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    api.backend.add_asset(FlavorAsset(id="0_conv0301", entry_id=entry.id, partner_id=100,
                                      flavor_params_id=301, status=FlavorStatus.CONVERTING))
    api.client.flavorAsset.delete("0_f0000001")  # the last READY one
    emptied = api.client.media.get(entry.id)
    assert emptied.status.getValue() == str(EntryStatus.NO_CONTENT)
    assert emptied.flavorParamsIds in ("", None)
    api.client.media.addContent(entry.id, resource(api))
    assert status(api, entry.id) == EntryStatus.PRECONVERT


def test_deleting_a_failed_flavor_of_an_entry_with_no_ready_one_empties_it(api: Api) -> None:
    # entry::syncFlavorParamsIds runs on every flavor that becomes DELETED, READY or not.
    entry = make_entry(api.backend, 1, status=EntryStatus.ERROR_CONVERTING)
    api.backend.flavors["0_f0000001"].status = FlavorStatus.ERROR
    api.client.flavorAsset.delete("0_f0000001")
    assert status(api, entry.id) == EntryStatus.NO_CONTENT
