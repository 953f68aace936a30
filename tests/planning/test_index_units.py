"""The entry index file (controller/runtime/index.py): what it keeps, what it refuses to trust."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
from pathlib import Path

import pytest

from controller.runtime.index import INDEX_FILE, EntryIndex, decode, encode
from policies.observed import FlavorFacts, ObservedEntry

TARGET = "https://kaltura.example|partner 1, s3://bucket/karchive/|shard 0/1"


def entry(n: int, *, played: int | None = None,
          tags: frozenset[str] = frozenset()) -> ObservedEntry:
    return ObservedEntry(
        entry_id=f"0_{n:08d}", name=f"Lecture {n}", user_id="alice", creator_id="alice",
        status=2, media_type=1, created_at=1_600_000_000 + n, updated_at=1_600_000_100 + n,
        last_played_at=played, plays=3, duration=600, tags=tags or frozenset({"phy101"}),
        category_ids=frozenset({11, 12}), categories=("Courses>PHY101",),
        flavors=(FlavorFacts(f"0_f{n:07d}", 0, True, 2, 10_000_000 + n, "mp4", 1_600_000_050),
                 FlavorFacts(f"0_g{n:07d}", 4, False, 2, 1_000_000, "mp4", 1_600_000_060)),
        replacement_status=0, replacing_entry_id=None, reference_id="ref")


def built(folder: Path, entries: list[ObservedEntry], synced_at: int = 1_700_000_000
          ) -> EntryIndex:
    index = EntryIndex(folder, TARGET)
    build = index.rebuild()
    for start in range(0, len(entries), 3):
        build.add(entries[start:start + 3])
    build.commit(synced_at)
    return index


def test_a_row_holds_the_kaltura_side_of_an_entry_exactly() -> None:
    original = entry(7, played=1_650_000_000, tags=frozenset({"b", "a"}))
    assert decode(encode(original)) == original
    # The archive's facts, notices and owner are never kept: they are read every cycle.
    assert decode(encode(original)).archive is None


def test_a_built_index_reads_back_every_entry_in_pages(tmp_path: Path) -> None:
    entries = [entry(n) for n in range(11)]
    index = built(tmp_path, entries)
    marks = index.marks()
    assert marks is not None and marks.synced_at == marks.changed_at == 1_700_000_000
    pages = list(index.pages(page=4))
    assert [len(p) for p in pages] == [4, 4, 3]
    assert [e for p in pages for e in p] == sorted(entries, key=lambda e: e.entry_id)


def test_an_abandoned_walk_leaves_the_last_complete_index_in_place(tmp_path: Path) -> None:
    index = built(tmp_path, [entry(1), entry(2)])
    build = index.rebuild()
    build.add([entry(3)])
    build.abandon()
    assert index.count() == 2 and index.marks() is not None
    assert not (tmp_path / (INDEX_FILE + ".new")).exists()


def _killed_mid_walk(folder: str) -> None:
    index = EntryIndex(Path(folder), TARGET)
    build = index.rebuild()
    build.add([entry(n) for n in range(1000)])
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_walk_killed_before_its_commit_is_never_read(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=_killed_mid_walk, args=(str(tmp_path),))
    process.start()
    process.join(30)
    assert process.exitcode == -signal.SIGKILL
    assert (tmp_path / (INDEX_FILE + ".new")).exists()  # what the kill left behind
    index = EntryIndex(tmp_path, TARGET)
    assert index.marks() is None and index.problem == "no index yet"
    built(tmp_path, [entry(1)])  # the next walk starts its own file over
    assert index.count() == 1


def _killed_mid_update(folder: str) -> None:
    index = EntryIndex(Path(folder), TARGET)
    db = index._connect()
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT OR REPLACE INTO entry (id, body) VALUES (?, ?)",
                   ((e.entry_id, encode(e)) for e in (entry(n, played=5) for n in range(500))))
    db.execute("UPDATE meta SET value = '1800000000' WHERE key = 'changed_at'")
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_refresh_killed_mid_transaction_leaves_the_old_rows_and_mark(tmp_path: Path) -> None:
    index = built(tmp_path, [entry(n) for n in range(10)])
    context = multiprocessing.get_context("spawn")
    process = context.Process(target=_killed_mid_update, args=(str(tmp_path),))
    process.start()
    process.join(30)
    assert process.exitcode == -signal.SIGKILL
    marks = index.marks()
    assert marks is not None and marks.changed_at == 1_700_000_000  # the refresh runs again
    assert index.count() == 10
    assert all(e.last_played_at is None for p in index.pages() for e in p)


def test_an_update_writes_removes_and_moves_the_mark_together(tmp_path: Path) -> None:
    index = built(tmp_path, [entry(n) for n in range(5)])
    index.mark_stale(["0_00000001", "0_00000002"])
    assert index.stale() == ["0_00000001", "0_00000002"]
    index.update([entry(3, played=1_750_000_000), entry(9)], gone=["0_00000001"],
                 cleared=["0_00000001", "0_00000002"], changed_at=1_750_000_100)
    marks = index.marks()
    assert marks is not None and marks.changed_at == 1_750_000_100
    assert marks.synced_at == 1_700_000_000
    found = index.get(["0_00000001", "0_00000003", "0_00000009"])
    assert set(found) == {"0_00000003", "0_00000009"}
    assert found["0_00000003"].last_played_at == 1_750_000_000
    assert index.stale() == []


def test_a_corrupt_index_is_not_trusted(tmp_path: Path) -> None:
    index = built(tmp_path, [entry(n) for n in range(2000)])
    with (tmp_path / INDEX_FILE).open("r+b") as handle:
        handle.seek(8192)
        handle.write(os.urandom(16384))
    assert index.marks() is None
    assert index.problem is not None and ("quick_check" in index.problem
                                          or "cannot be read" in index.problem)


def test_an_index_of_another_target_or_format_is_not_trusted(tmp_path: Path) -> None:
    built(tmp_path, [entry(1)])
    other = EntryIndex(tmp_path, TARGET.replace("shard 0/1", "shard 0/3"))
    assert other.marks() is None
    assert other.problem == "the index was built for another target or format"
    with sqlite3.connect(tmp_path / INDEX_FILE) as db:
        db.execute("UPDATE meta SET value = '0' WHERE key = 'format'")
    assert EntryIndex(tmp_path, TARGET).marks() is None


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 100])
def test_a_file_that_is_no_index_is_not_trusted(tmp_path: Path, content: bytes) -> None:
    (tmp_path / INDEX_FILE).write_bytes(content)
    index = EntryIndex(tmp_path, TARGET)
    assert index.marks() is None and index.problem is not None
