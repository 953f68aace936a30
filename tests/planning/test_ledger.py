"""The inventory's ledger (controller/adapters/storage/ledger.py): each entry's copy decided from
what the listing showed, as the listing code always decided it, one entry at a time."""

from __future__ import annotations

from collections.abc import Sequence

from controller.adapters.storage.ledger import Candidate, Ledger
from policies.layout import ENTRY_FOLDER, LEGACY, KeyKind, ParsedKey
from policies.observed import ArchiveFacts, NoticeMark, RestoreStatus


def facts(key: str, layout: str = ENTRY_FOLDER, *, etag: str = "e1",
          flavor: str | None = "0_f1") -> ArchiveFacts:
    return ArchiveFacts(key=key, size_bytes=100, storage_class="GLACIER",
                        restore=RestoreStatus.FROZEN, layout=layout, etag=etag,
                        flavor_id=flavor, restore_expiry=None)


def newest(entry_id: str, candidates: Sequence[Candidate]) -> ArchiveFacts:
    return max(candidates, key=lambda c: c[0] or 0.0)[1]


def test_the_newest_entry_folder_copy_wins_over_older_ones_and_a_bare_id_object() -> None:
    ledger = Ledger()
    ledger.original("0_a", facts("0_a", LEGACY, flavor=None))
    ledger.original("0_a", facts("p/0_a/original/0_f1.mp4"), 100.0)
    ledger.original("0_a", facts("p/0_a/original/0_f2.mp4", flavor="0_f2"), 200.0)
    ledger.original("0_b", facts("0_b", LEGACY, flavor=None))
    copies = ledger.settle(newest)
    found, notices = copies.lookup(["0_a", "0_b", "0_c"])
    assert found["0_a"].key == "p/0_a/original/0_f2.mp4"
    assert found["0_b"].key == "0_b" and found["0_b"].layout == LEGACY
    assert "0_c" not in found and notices == {}
    assert len(copies) == 2 and sorted(copies) == ["0_a", "0_b"]
    assert dict(copies) == {"0_a": found["0_a"], "0_b": found["0_b"]}
    copies.close()


def test_markers_prove_a_bare_id_copy_and_name_the_placeholder() -> None:
    ledger = Ledger()
    ledger.original("0_a", facts("0_a", LEGACY, etag="abc", flavor=None))
    assert ledger.marker(ParsedKey("0_a", KeyKind.VERIFIED, ENTRY_FOLDER, "0_f9", "abc"))
    assert ledger.marker(ParsedKey("0_a", KeyKind.PLACEHOLDER, ENTRY_FOLDER, "0_p1"))
    assert ledger.marker(ParsedKey("0_b", KeyKind.NOTICE, ENTRY_FOLDER, "10-20",
                                   "0123456789ab"))
    assert not ledger.marker(ParsedKey("0_a", KeyKind.ORIGINAL, LEGACY))
    found, notices = ledger.settle(newest).lookup(["0_a", "0_b"])
    assert found["0_a"].flavor_id == "0_f9"  # verified for the ETag it has
    assert found["0_a"].placeholder_flavor_ids == frozenset({"0_p1"})
    assert notices == {"0_b": (NoticeMark("0_b", 10, 20, "0123456789ab"),)}
    assert "0_b" not in found  # a notice marker alone is no copy


def test_a_marker_for_another_etag_proves_nothing() -> None:
    ledger = Ledger()
    ledger.original("0_a", facts("0_a", LEGACY, etag="new", flavor=None))
    ledger.marker(ParsedKey("0_a", KeyKind.VERIFIED, ENTRY_FOLDER, "0_f9", "old"))
    found, _ = ledger.settle(newest).lookup(["0_a"])
    assert found["0_a"].flavor_id is None


def test_choose_sees_every_candidate_of_its_entry_in_listing_order() -> None:
    seen: dict[str, list[str]] = {}

    def record(entry_id: str, candidates: Sequence[Candidate]) -> ArchiveFacts:
        seen[entry_id] = [c[1].key for c in candidates]
        return candidates[-1][1]

    ledger = Ledger()
    for n in range(12_000):  # past one write batch: the rows come back from disk in order
        entry_id = f"0_{n % 3000:08d}"
        ledger.original(entry_id, facts(f"p/{entry_id}/original/{n}.mp4"), 5.0)
    copies = ledger.settle(record)
    assert len(seen) == 3000 and len(copies) == 3000
    assert seen["0_00000007"] == [f"p/0_00000007/original/{n}.mp4"
                                  for n in (7, 3007, 6007, 9007)]
    found, _ = copies.lookup([f"0_{n:08d}" for n in range(0, 3000, 3)])
    assert len(found) == 1000
    assert found["0_00000009"].key == "p/0_00000009/original/9009.mp4"
