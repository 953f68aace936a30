"""The counts every report shares (policies.counts) and the plan's figures (policies.totals)."""

from __future__ import annotations

from typing import Any

import pytest
from planning_factory import (
    BOTH_TAGS,
    NOW,
    PLACEHOLDER_SIZE,
    VIDEO_SIZE,
    archive,
    archived,
    entry,
    placeholder,
    placeholder_flavor,
)

from policies.counts import reported_state
from policies.observed import ObservedEntry, RestoreStatus
from policies.plan import Action, diff
from policies.schema import Policy
from policies.state import ObservedState, classify
from policies.totals import BYTES_LIMIT, TRANSITIONS_LIMIT, Amount, CycleLimits, admit


def policy(rules: list[dict[str, Any]], **changes: Any) -> Policy:
    document: dict[str, Any] = {
        "version": 1,
        "kaltura": {"service_url": "http://k", "partner_id": 1, "admin_secret": "s"},
        "storage": {"bucket": "bkt"},
        "placeholder": "https://cdn.example/placeholder.mp4",
        "restore_on_play": True,
        "rules": rules,
    }
    return Policy.model_validate(document | changes)


ALL_ARCHIVED = [{"name": "all", "state": "archived"}]


@pytest.mark.parametrize(
    ("subject", "state"),
    [
        (entry(), ObservedState.ORIGINAL),
        (archived(), ObservedState.ARCHIVED),
        (placeholder(), ObservedState.PLACEHOLDER),
        (placeholder(archive=archive(restore=RestoreStatus.THAWED)), ObservedState.PLACEHOLDER),
        # A copy being thawed: the content is on its way back.
        (placeholder(archive=archive(restore=RestoreStatus.THAWING)), ObservedState.RESTORING),
        # Kaltura swapping content in (a restore) is restoring already.
        (placeholder(replacement_status=1), ObservedState.RESTORING),
        # An archived entry's copy thawed for an export stays archived.
        (archived(archive=archive(restore=RestoreStatus.THAWING)), ObservedState.ARCHIVED),
        (entry(status=0), ObservedState.UNHEALTHY),
    ],
)
def test_reported_state(subject: ObservedEntry, state: ObservedState) -> None:
    assert reported_state(subject, classify(subject, PLACEHOLDER_SIZE)) is state


def catalogue() -> list[ObservedEntry]:
    return [
        entry(entry_id="0_orig0001"),
        archived(entry_id="0_arch0001"),
        placeholder(entry_id="0_thaw0001", last_played_at=NOW - 5,
                    archive=archive(restore=RestoreStatus.THAWING)),
        # Unhealthy and the policy's: listed. Unhealthy, exempt, never touched: counted only.
        entry(entry_id="0_sick0001", status=-1),
        entry(entry_id="0_sick0002", status=1, tags=frozenset({"archive_exempt"})),
        entry(entry_id="0_sick0003", status=7, tags=frozenset({"archive_exempt"})),
        # Exempt but karchive's tags: karchive touched it, so it is listed.
        entry(entry_id="0_sick0004", tags=BOTH_TAGS | {"archive_exempt"},
              flavors=(placeholder_flavor(),)),
    ]


def test_the_census_counts_every_entry_once_and_splits_the_unhealthy() -> None:
    plan = diff(catalogue(), policy(ALL_ARCHIVED), NOW, PLACEHOLDER_SIZE)
    census = plan.census
    assert census.entries == plan.observed_count == 7
    assert census.by_state == {"original": 1, "archived": 1, "placeholder": 0,
                               "restoring": 1, "unhealthy": 4}
    assert (census.unhealthy_managed, census.unhealthy_unmanaged) == (2, 2)
    assert census.unhealthy == census.by_state["unhealthy"]
    listed = {item.entry_id for item in plan.items if item.action is Action.UNHEALTHY}
    assert listed == {"0_sick0001", "0_sick0004"}
    assert census.thaws_in_progress == 1
    assert sum(census.by_desired.values()) == census.entries
    assert plan.summary() == ("Plan: 1 to archive, 0 to replace, 0 to restore. "
                              "4 unhealthy (2 managed, 2 unmanaged), 1 waiting.")


def test_unmanaged_unhealthy_entries_are_in_the_table_not_in_the_items() -> None:
    plan = diff(catalogue(), policy(ALL_ARCHIVED), NOW, PLACEHOLDER_SIZE)
    text = plan.render()
    assert "    2 unhealthy that karchive manages (the ! lines below)" in text
    assert "    2 unhealthy that it does not manage (`karchive health` lists them)" in text
    assert "0_sick0002" not in text and "0_sick0003" not in text


class Item:
    def __init__(self, size: int) -> None:
        self.bytes = size


@pytest.mark.parametrize(
    ("sizes", "limits", "deferred_by"),
    [
        ([1, 1, 1], CycleLimits(2, 100), [None, None, TRANSITIONS_LIMIT]),
        ([60, 50, 30], CycleLimits(10, 100), [None, BYTES_LIMIT, None]),
        # The first item always runs, however big: one video must not stall every cycle.
        ([500, 1], CycleLimits(10, 100), [None, BYTES_LIMIT]),
        ([1], CycleLimits(0, 100), [TRANSITIONS_LIMIT]),
    ],
)
def test_admit(sizes: list[int], limits: CycleLimits, deferred_by: list[str | None]) -> None:
    assert [why for _, why in admit([Item(n) for n in sizes], limits)] == deferred_by


def test_the_plan_says_what_this_cycles_limits_let_through() -> None:
    entries = [entry(entry_id=f"0_orig{n:04d}") for n in range(5)]
    limits = {"transitions_per_cycle": 2, "bytes_per_cycle": "10GB"}
    plan = diff(entries, policy(ALL_ARCHIVED, limits=limits), NOW, PLACEHOLDER_SIZE)
    share = plan.totals().this_cycle
    assert share is not None
    assert share.admitted == Amount(2, 2 * VIDEO_SIZE)
    assert share.deferred == {TRANSITIONS_LIMIT: Amount(3, 3 * VIDEO_SIZE)}
    text = plan.render()
    assert "  This cycle: 2 of 5 changes run (572.2 MiB); the rest wait for later cycles:" in text
    assert "    3 deferred by limits.transitions_per_cycle: 2" in text
    assert plan.summary().endswith(" This cycle's limits let 2 of 5 run.")


def test_a_plan_with_nothing_to_say_has_no_table() -> None:
    plan = diff([archived()], policy(ALL_ARCHIVED), NOW, PLACEHOLDER_SIZE)
    assert plan.render() == "No changes."
