"""Snapshot round trip: the restored backend answers the API exactly as the original did."""

from __future__ import annotations

import json

from emu_api import Api, make_entry, upload
from KalturaClient.Plugins.Core import (
    KalturaAssetFilter,
    KalturaMediaEntryFilter,
    KalturaUploadedFileTokenResource,
)

from sandbox.kaltura.content import SeededContent
from sandbox.kaltura.models import KalturaBackend
from sandbox.kaltura.records import EntryStatus, Partner, ReplacementStatus


def restored(backend: KalturaBackend) -> KalturaBackend:
    data = json.loads(json.dumps(backend.snapshot()))  # must survive JSON
    return KalturaBackend.from_snapshot(data)


def test_snapshot_round_trip_keeps_entries_assets_and_settings(api: Api) -> None:
    b = api.backend
    b.partner.replacement_requires_approval = True
    make_entry(b, 1, tags="archived_to_s3", last_played_at=1_650_000_000, plays=4)
    make_entry(b, 2, size=12 * 1024**3)  # a 12 GB video stored as a seed, not as bytes
    b.record_play("0_e0000002")
    api.client.media.updateContent("0_e0000001",
                                   KalturaUploadedFileTokenResource(token=upload(api, b"new")))
    spare = upload(api, b"spare bytes")
    raw = json.dumps(b.snapshot())
    assert len(raw) < 20_000

    copy = restored(b)
    assert copy.partner == b.partner
    for entry_id in ("0_e0000001", "0_e0000002"):
        assert copy.get_entry(entry_id) == b.get_entry(entry_id)
    assert copy.flavors["0_f0000002"].content == SeededContent(2, 12 * 1024**3)
    assert copy.tokens[spare].data == bytearray(b"spare bytes")
    listing = copy.list_entries({"orderBy": "+createdAt"}, {})
    assert [e.id for e in listing.objects] == ["0_e0000001", "0_e0000002"]

    # The pending conversion survives and completes on the restored clock.
    copy.clock.advance(61)
    copy.tick()
    assert copy.get_entry("0_e0000001").replacement_status == \
        ReplacementStatus.READY_BUT_NOT_APPROVED
    copy.approve_replace("0_e0000001")
    source = [f for f in copy.flavors_by_entry["0_e0000001"] if f.is_original and f.status == 2]
    assert source[0].content.read(0, 3) == b"new"


def test_restored_backend_serves_the_api(api: Api) -> None:
    make_entry(api.backend, 1)
    copy = restored(api.backend)
    copy.update_media("0_e0000001", {"tags": "Moved"})
    result = copy.list_entries({"tagsLike": "moved"}, {})
    assert [e.id for e in result.objects] == ["0_e0000001"]
    assert api.client.media.list(KalturaMediaEntryFilter(tagsLike="moved"), None).objects == []
    assert copy.list_thumbs({"entryIdEqual": "0_e0000001"}, {}).total_count == 1
    assert api.client.thumbAsset.list(KalturaAssetFilter(entryIdEqual="0_e0000001"),
                                      None).totalCount == 1


def test_an_import_in_flight_is_restored_as_failed() -> None:
    backend = KalturaBackend(Partner())
    make_entry(backend, 1)
    data = backend.snapshot()
    temp = {**data["entries"][0], "id": "0_temp0001", "status": EntryStatus.IMPORT,
            "replaced_entry_id": "0_e0000001", "display_in_search": -1}
    data["entries"][0]["replacing_entry_id"] = "0_temp0001"
    data["entries"][0]["replacement_status"] = ReplacementStatus.APPROVED_BUT_NOT_READY
    data["entries"].append(temp)
    copy = KalturaBackend.from_snapshot(data)
    assert copy.get_entry("0_temp0001").status == EntryStatus.ERROR_IMPORTING
    assert copy.get_entry("0_e0000001").replacement_status == ReplacementStatus.FAILED


def test_a_snapshot_from_before_asset_sizes_in_bytes_still_loads() -> None:
    backend = KalturaBackend(Partner())
    make_entry(backend, 1)
    data = json.loads(json.dumps(backend.snapshot()))
    for thumb in data["thumbs"]:  # as an older emulator wrote it
        del thumb["size_in_bytes"]
        thumb["version"] = "1"
    copy = KalturaBackend.from_snapshot(data)
    assert copy.thumbs["0_t0000001"].size_in_bytes == 900
    assert copy.thumbs["0_t0000001"].version == 1


def test_users_survive_a_snapshot_and_an_older_one_gets_its_owners() -> None:
    backend = KalturaBackend(Partner())
    make_entry(backend, 1, user_id="jdoe@example.edu", creator_id="asmith")
    backend.upsert_user({"id": "jdoe@example.edu", "firstName": "Jane", "lastName": "Doe",
                         "email": "jdoe@example.edu", "status": 0})
    data = json.loads(json.dumps(backend.snapshot()))
    assert restored(backend).users == backend.users
    del data["users"]  # as an emulator without users wrote it
    copy = KalturaBackend.from_snapshot(data)
    assert sorted(copy.users) == ["asmith", "jdoe@example.edu"]
    assert copy.users["asmith"].first_name == "asmith"
