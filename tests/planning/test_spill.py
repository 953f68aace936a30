"""A big plan's items on disk (controller/runtime/spill.py): the same plan as in memory.

The pipeline hands the diff a store that moves to a temporary SQLite file past a few thousand
items; everything read from the plan — its items in order, the table, the lines, the plan file,
the counts — must be exactly what the in-memory plan gives. Thresholds are lowered so a few
dozen entries cross them (and the reads page across several batches).
"""

from __future__ import annotations

from typing import Any

import pytest
from planning_factory import NOW, PLACEHOLDER_SIZE, archive, archived, entry, placeholder
from test_plan import policy

from controller.runtime import spill
from controller.runtime.spill import SpilledItems, SpillingItems
from policies.observed import ObservedEntry, RestoreStatus
from policies.plan import ACTION_ORDER, Assessor, ListItems, Plan, PlanBuilder


def catalogue(n: int) -> list[ObservedEntry]:
    """Entries of every kind the diff meets, in no particular order."""
    kinds = [
        lambda i: entry(entry_id=f"0_a{i:07d}"),                      # archive
        lambda i: archived(entry_id=f"0_r{i:07d}"),                   # replace
        lambda i: placeholder(entry_id=f"0_t{i:07d}", last_played_at=NOW - 5),  # thaw
        lambda i: placeholder(entry_id=f"0_s{i:07d}", last_played_at=NOW - 5,
                              archive=archive(restore=RestoreStatus.READABLE)),  # restore
        lambda i: entry(entry_id=f"0_x{i:07d}", status=-1),           # unhealthy
        lambda i: entry(entry_id=f"0_d{i:07d}"),                      # delete
    ]
    return [kinds[i % len(kinds)](i) for i in reversed(range(n))]


RULES: list[dict[str, Any]] = [
    {"name": "purge", "match": {"entry_ids": [f"0_d{i:07d}" for i in range(5, 120, 6)]},
     "state": "deleted"},
    {"name": "cold", "match": {"entry_ids": [f"0_r{i:07d}" for i in range(1, 120, 6)]},
     "state": "placeholder"},
    {"name": "rest", "state": "archived"},
]


def planned(store: Any, n: int = 120) -> Plan:
    rules = policy(None, rules=RULES, restore_on_play=True)
    assess = Assessor(rules, NOW, PLACEHOLDER_SIZE)
    builder = PlanBuilder(rules, NOW, store)
    for subject in catalogue(n):
        builder.add(assess(subject))
    return builder.plan()


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spill, "_BATCH", 7)


def test_a_spilled_plan_reads_exactly_as_the_one_in_memory(small_batches: None) -> None:
    memory, disk = planned(ListItems()), planned(SpillingItems(in_memory=5))
    assert isinstance(disk.items, SpilledItems)  # the threshold was crossed
    assert list(disk.items) == list(memory.items)
    assert len(disk.items) == len(memory.items) == 120
    assert {a for a in ACTION_ORDER if disk.count(a)} >= {
        *(i.action for i in memory.items)}
    assert all(disk.count(a) == memory.count(a) for a in ACTION_ORDER)
    assert disk.render() == memory.render()
    assert disk.to_json() == memory.to_json()
    assert list(disk.changes) == list(memory.changes)
    assert disk.summary() == memory.summary()


def test_a_spilled_plan_is_indexed_like_a_sequence(small_batches: None) -> None:
    memory, disk = planned(ListItems()), planned(SpillingItems(in_memory=5))
    for index in (0, 6, 7, 8, 59, -1, -120):
        assert disk.items[index] == memory.items[index]
    assert disk.items[3:11] == tuple(memory.items[3:11])
    with pytest.raises(IndexError):
        disk.items[120]


def test_a_small_plan_stays_in_memory() -> None:
    plan = planned(SpillingItems(in_memory=500))
    assert isinstance(plan.items, tuple)
    assert list(plan.items) == list(planned(ListItems()).items)


def test_a_spilled_plan_can_be_walked_while_it_is_walked(small_batches: None) -> None:
    # The daemon renders the plan while the executor walks its changes: two readers at once.
    disk = planned(SpillingItems(in_memory=5))
    outer = iter(disk.items)
    first = [next(outer) for _ in range(10)]
    inner = list(disk.items)
    assert first + list(outer) == inner
