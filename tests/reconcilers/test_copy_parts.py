"""Pure parts of the copy path and the executor: part sizes, the journal, the apply guard."""

from __future__ import annotations

import json

import pytest

from controller.adapters.storage.writer import (
    FIRST_PART,
    MAX_PARTS,
    MiB,
    first_part_for,
    part_size_for,
    parts_in_flight,
)
from controller.runtime.executor import guard
from controller.runtime.journal import Journal, interrupted, scrub
from policies.observed import TAG_ARCHIVED
from policies.plan import Action, Plan, PlanItem
from policies.schema import DesiredState
from policies.state import ObservedState


@pytest.mark.parametrize(
    ("size", "configured", "expected"),
    [
        (0, None, 16 * MiB),
        (1, None, 16 * MiB),
        (2 * 1024 * MiB, None, 16 * MiB),  # 2 GiB: 128 parts of 16 MiB
        (16 * MiB * MAX_PARTS, None, 16 * MiB),  # exactly 10,000 parts
        (16 * MiB * MAX_PARTS + 1, None, 17 * MiB),  # one byte more: a bigger part
        (5 * 1024 * 1024 * MiB, None, 525 * MiB),  # 5 TiB, S3's largest object
        (10 * MiB, 5 * MiB, 5 * MiB),
        (100 * 1024 * MiB, 5 * MiB, 11 * MiB),  # the policy's part would need > 10,000 parts
    ],
)
def test_part_size_fits_10000_parts_in_whole_mib(size: int, configured: int | None,
                                                 expected: int) -> None:
    part = part_size_for(size, configured)
    assert part == expected
    assert part % MiB == 0
    assert -(-size // part) <= MAX_PARTS


@pytest.mark.parametrize(
    ("size", "part", "first"),
    [
        (40 * MiB, 16 * MiB, FIRST_PART),  # the upload starts after 5 MiB, not 16
        (40 * MiB, 5 * MiB, 5 * MiB),  # the policy's part is S3's smallest already
        (16 * MiB * (MAX_PARTS - 1) + FIRST_PART, 16 * MiB, FIRST_PART),  # 10,000 parts still
        (16 * MiB * MAX_PARTS, 16 * MiB, 16 * MiB),  # one part more would pass 10,000
    ],
)
def test_the_first_part_is_s3s_smallest_while_the_object_fits_10000_parts(
        size: int, part: int, first: int) -> None:
    assert first_part_for(size, part) == first
    assert 1 + -(-(size - first) // part) <= MAX_PARTS


@pytest.mark.parametrize(
    ("part_memory", "parallel", "expected"),
    [
        (None, 4, 4),  # no budget: the policy's parallel parts
        (80 * MiB, 4, 4),  # 5 parts of 16 MiB: 4 uploading, 1 being read
        (79 * MiB, 4, 3),  # a byte short of that: one fewer uploading
        (32 * MiB, 4, 1),  # two parts: one uploads while the next is read
        (8 * MiB, 4, 1),  # less than two: still one at a time, never none
        (1024 * MiB, 2, 2),  # plenty: parallel_parts caps it
    ],
)
def test_parts_in_flight_fit_the_copys_share(part_memory: int | None, parallel: int,
                                             expected: int) -> None:
    assert parts_in_flight(16 * MiB, parallel, part_memory) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://s3/b/k?X-Amz-Signature=abc&X-Amz-Credential=id", "https://s3/b/k"),
        ({"url": "http://k/p/1/a.mp4?ks=djJ8secret", "key": "a/b"},
         {"url": "http://k/p/1/a.mp4", "key": "a/b"}),
        ({"ks": "djJ8secret", "admin_secret": "s", "size": 3}, {"size": 3}),
        ({"tags": frozenset({"b", "a"})}, {"tags": ["a", "b"]}),
        ("plain text", "plain text"),
    ],
)
def test_the_journal_never_keeps_a_secret_or_a_signature(value: object, expected: object) -> None:
    assert scrub(value) == expected


def test_an_intent_without_its_result_is_an_interrupted_step(tmp_path) -> None:
    journal = Journal(tmp_path)
    journal.record("0_aaaaaaaa", "archive", "upload", result="intent", before={"key": "k"})
    journal.record("0_bbbbbbbb", "archive", "upload", result="intent")
    journal.record("0_bbbbbbbb", "archive", "upload", result="ok", after={"sha256": "x"})
    found = interrupted(tmp_path)  # an audit after a kill
    assert set(found) == {"0_aaaaaaaa"}
    assert found["0_aaaaaaaa"]["step"] == "upload"


def test_a_line_cut_by_a_kill_is_skipped_and_the_rest_is_read(tmp_path) -> None:
    journal = Journal(tmp_path)
    journal.record("0_aaaaaaaa", "replace", "replace", result="intent")
    path = next(tmp_path.glob("*.jsonl"))
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"ts": "2026-01-01T00:00:00Z", "entry_id": "0_aaaa')  # half a line
    assert interrupted(tmp_path)["0_aaaaaaaa"]["action"] == "replace"


def test_each_line_holds_the_promised_fields(tmp_path) -> None:
    journal = Journal(tmp_path / "run.jsonl")
    journal.record("0_aaaaaaaa", "archive", "tag", result="ok",
                   before={"tags": []}, after={"tags": [TAG_ARCHIVED]})
    line = json.loads((tmp_path / "run.jsonl").read_text().splitlines()[0])
    assert set(line) == {"ts", "entry_id", "action", "step", "before", "after", "result",
                         "error"}
    assert line["after"] == {"tags": [TAG_ARCHIVED]}


def test_the_journal_ships_this_runs_lines_under_log(tmp_path) -> None:
    class Bucket:
        def __init__(self) -> None:
            self.put: dict[str, bytes] = {}

        def put_bytes(self, key: str, data: bytes, *, content_type: str) -> str:
            self.put[key] = data
            return "etag"

    journal = Journal(tmp_path)
    assert journal.ship(Bucket(), "karchive/") is None  # nothing written, nothing shipped
    journal.record("0_aaaaaaaa", "thaw", "thaw", result="ok")
    bucket = Bucket()
    key = journal.ship(bucket, "karchive/")
    assert key is not None and key.startswith("karchive/log/") and key.endswith(".jsonl")
    assert json.loads(bucket.put[key])["step"] == "thaw"


def _item(entry_id: str, action: Action) -> PlanItem:
    return PlanItem(entry_id, action, ObservedState.ORIGINAL, DesiredState.PLACEHOLDER,
                    ("upload",), "rule", 0, "why", "f")


class _Policy:
    class limits:  # noqa: N801 - stands in for the policy's limits section
        max_replace_share = 0.25


@pytest.mark.parametrize(
    ("replaces", "observed", "refused"),
    [(0, 0, False), (1, 0, True), (25, 100, False), (26, 100, True), (1, 4, False),
     (2, 4, True)],
)
def test_the_guard_refuses_an_empty_catalogue_or_too_many_replaces(
    replaces: int, observed: int, refused: bool
) -> None:
    items = tuple(_item(f"0_{i:08d}", Action.REPLACE) for i in range(replaces))
    reason = guard(Plan(items, 0, observed), _Policy())  # type: ignore[arg-type]
    assert (reason is not None) is refused
    if reason is not None:
        assert "\n" not in reason


@pytest.mark.parametrize(("replaces", "deletes", "refused"), [(0, 25, False), (0, 26, True),
                                                              (13, 13, True), (12, 13, False)])
def test_the_guard_counts_deletions_with_replaces(replaces: int, deletes: int,
                                                  refused: bool) -> None:
    items = tuple(_item(f"0_r{i:07d}", Action.REPLACE) for i in range(replaces)) + tuple(
        _item(f"0_d{i:07d}", Action.DELETE) for i in range(deletes))
    reason = guard(Plan(items, 0, 100), _Policy())  # type: ignore[arg-type]
    assert (reason is not None) is refused
    if reason is not None:
        assert f"deletes {deletes}" in reason and "max_replace_share" in reason
