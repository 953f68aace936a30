"""Entry actions through the real client: add, get, update (tags, nulls, read-only), delete."""

from __future__ import annotations

import pytest
import requests
from emu_api import Api, make_entry
from KalturaClient.exceptions import KalturaException
from KalturaClient.Plugins.Core import KalturaMediaEntry, KalturaMediaEntryFilter

from sandbox.kaltura.models.entries import normalise_tags
from sandbox.kaltura.records import EntryStatus


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Foo,bar, A,foo", "foo, bar"),
        ("  archived_to_s3 ,FLAVORS_DELETED", "archived_to_s3, flavors_deleted"),
        ("a,b,c", ""),
        ("", ""),
    ],
)
def test_tags_are_normalised_like_the_server(raw: str, expected: str) -> None:
    assert normalise_tags(raw) == expected


def test_get_returns_entry_and_ignores_version(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    got = api.client.media.get(entry.id, 7)
    assert got.id == entry.id
    assert got.status.getValue() == "2"
    assert got.thumbnailUrl == f"{api.server.url}/p/100/sp/10000/download/thumb/0_t0000001/a.jpg"


@pytest.mark.parametrize("entry_id", ["0_nothere", "0_e0000002"])
def test_get_unknown_or_deleted_is_not_found(api: Api, entry_id: str) -> None:
    make_entry(api.backend, 2, status=EntryStatus.DELETED)
    with pytest.raises(KalturaException) as err:
        api.client.media.get(entry_id)
    assert err.value.code == "ENTRY_ID_NOT_FOUND"
    assert str(err.value).startswith(f'Entry id "{entry_id}" not found')


def test_update_changes_only_fields_sent_and_normalises_tags(api: Api) -> None:
    entry = make_entry(api.backend, 1, description="keep me")
    before = entry.updated_at
    updated = api.client.media.update(entry.id, KalturaMediaEntry(tags="Foo,bar, A,foo"))
    assert updated.tags == "foo, bar"
    assert updated.description == "keep me"
    assert updated.name == "Entry 1"
    assert updated.updatedAt > before


def test_update_with_none_clears_the_field(api: Api) -> None:
    entry = make_entry(api.backend, 1, description="old", reference_id="ref-1")
    updated = api.client.media.update(entry.id, KalturaMediaEntry(description=None))
    assert updated.description == ""
    assert updated.referenceId == "ref-1"


def _raw_update(api: Api, entry_id: str, fields: dict[str, str]) -> dict:
    body = {"ks": api.client.getKs(), "format": "1", "entryId": entry_id,
            "mediaEntry": {"objectType": "KalturaMediaEntry", **fields}}
    url = f"{api.server.url}/api_v3/service/media/action/update"
    return requests.post(url, json=body, timeout=10).json()


def test_update_refuses_a_changed_read_only_field(api: Api) -> None:
    entry = make_entry(api.backend, 1, plays=3)
    answer = _raw_update(api, entry.id, {"plays": "99"})
    assert answer["code"] == "PROPERTY_VALIDATION_NOT_UPDATABLE"
    assert answer["message"] == 'The property "KalturaMediaEntry::plays" cannot be updated'
    assert api.backend.get_entry(entry.id).plays == 3


def test_update_accepts_an_unchanged_read_only_field(api: Api) -> None:
    entry = make_entry(api.backend, 1, plays=3)
    answer = _raw_update(api, entry.id, {"plays": "3", "name": "renamed"})
    assert answer["name"] == "renamed"


def test_update_of_unknown_entry_is_not_found(api: Api) -> None:
    with pytest.raises(KalturaException) as err:
        api.client.media.update("0_missing0", KalturaMediaEntry(name="x"))
    assert err.value.code == "ENTRY_ID_NOT_FOUND"


def test_delete_hides_the_entry_and_its_assets(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    api.client.media.delete(entry.id)
    with pytest.raises(KalturaException):
        api.client.media.get(entry.id)
    assert api.backend.get_entry(entry.id).status == EntryStatus.DELETED
    assert api.backend.flavors["0_f0000001"].status == 3
    with pytest.raises(KalturaException) as err:
        api.client.media.delete(entry.id)
    assert err.value.code == "ENTRY_ID_NOT_FOUND"


def test_base_entry_get_and_delete(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    got = api.client.baseEntry.get(entry.id)
    assert type(got).__name__ == "KalturaMediaEntry"
    api.client.baseEntry.delete(entry.id)
    with pytest.raises(KalturaException) as err:
        api.client.baseEntry.get(entry.id)
    assert err.value.code == "ENTRY_ID_NOT_FOUND"


def test_add_creates_a_no_content_entry(api: Api) -> None:
    added = api.client.media.add(KalturaMediaEntry(name="New", tags="X1, x1", mediaType=1))
    assert added.status.getValue() == "7"
    assert added.tags == "x1"
    assert added.userId == "admin@example.edu"
    assert added.id.startswith("0_") and len(added.id) == 10
    listed = api.client.media.list(KalturaMediaEntryFilter(statusEqual="7"), None)
    assert [e.id for e in listed.objects] == [added.id]


def test_play_counts_and_last_played(api: Api) -> None:
    entry = make_entry(api.backend, 1)
    before = api.client.media.get(entry.id).updatedAt
    api.backend.clock.advance(60)
    played_from = api.backend.now()
    api.backend.record_play(entry.id)
    played_by = api.backend.now()  # the clock runs on: the play's second lies between the two
    got = api.client.media.get(entry.id)
    assert (got.plays, got.views) == (1, 1)
    assert played_from <= got.lastPlayedAt <= played_by
    assert got.lastPlayedAt >= before + 60
    # Kaltura's plays sync writes the counters without touching updatedAt (reference 11.6).
    assert got.updatedAt == before
