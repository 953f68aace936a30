"""The restore watch's pure parts: the mark arithmetic, what a check acts on, the mark's life
across checks that act and checks that do not (``runtime/watch.py``), without servers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from controller.errors import PermanentError
from controller.runtime.state import StateStore
from controller.runtime.thaws import ThawClock
from controller.runtime.watch import (
    OVERLAP,
    Checked,
    Watch,
    in_flight,
    kaltura_time,
    played_filter,
    restore_path,
    window_start,
)
from policies.observed import TAG_REPLACED, ArchiveFacts, ObservedEntry, RestoreStatus
from policies.plan import Action, Assessment, Plan, PlanItem
from policies.schema import DesiredState
from policies.state import ObservedState

T = 1_796_000_000  # a Kaltura clock reading (2026-12)


def item(entry_id: str, action: Action) -> PlanItem:
    return PlanItem(entry_id=entry_id, action=action, from_state=ObservedState.PLACEHOLDER,
                    to_state=DesiredState.ARCHIVED, reconcilers=(), rule="r", bytes=0,
                    reason="because", fingerprint="")


PLAN = Plan(tuple(item(f"0_{a.value[:8]:0<8}", a) for a in Action), T, len(Action))


def test_the_window_starts_one_overlap_before_the_mark() -> None:
    assert OVERLAP >= 24 * 3600  # the analytics sync may take up to a day
    assert window_start(T) == T - OVERLAP
    assert window_start(T, overlap=60) == T - 60
    assert played_filter(T - 5) == {"tagsMultiLikeOr": TAG_REPLACED,
                                    "lastPlayedAtGreaterThanOrEqual": T - 5}


@pytest.mark.parametrize("value", [0, -1, 315_360_000, 86_400])
def test_a_clock_reading_kaltura_would_take_for_relative_time_is_refused(value: int) -> None:
    with pytest.raises(PermanentError, match="not a date"):
        kaltura_time(value)
    with pytest.raises(PermanentError):
        window_start(value)


def test_a_window_that_would_reach_into_relative_time_is_refused() -> None:
    # A mark barely past the limit would list from a value Kaltura reads as "now - x".
    with pytest.raises(PermanentError):
        window_start(315_360_000 + 10)


def test_a_check_acts_on_the_restore_path_only_and_sends_no_notices() -> None:
    narrowed = restore_path(PLAN)
    assert {i.action for i in narrowed.items} == {Action.THAW, Action.RESTORE, Action.WAIT,
                                                  Action.REPAIR}
    assert narrowed.notices == () and narrowed.observed_count == PLAN.observed_count
    assert in_flight(PLAN) == {i.entry_id for i in PLAN.items
                               if i.action in (Action.THAW, Action.RESTORE, Action.WAIT)}


def checked(at: int | None, plan: Plan | None = None) -> Checked:
    return Checked(played=0, followed=0, observed=frozenset(), since=None, checked_at=at,
                   plan=plan, kaltura_calls=1)


def test_only_a_check_that_acted_moves_the_recorded_mark(tmp_path: Path) -> None:
    with StateStore.open(tmp_path) as store:
        watch = Watch(lambda: store.watch_mark)
        assert watch.mark() is None
        watch.cycle_done(T)  # the first acting cycle's start
        assert watch.mark() == T
        watch.done(checked(T + 600), acting=False)  # plan-only, standby or suspended
        assert watch.mark() == T
        watch.done(checked(T + 1200, plan=PLAN), acting=True)
        assert watch.mark() == T + 1200
        assert watch.in_flight == in_flight(PLAN)
        watch.done(checked(None), acting=True)  # nothing listed (restore_on_play off)
        assert watch.mark() == T + 1200
    # The mark outlives the process: a new store on the same folder reads it back.
    with StateStore.open(tmp_path) as store:
        assert Watch(lambda: store.watch_mark).mark() == T + 1200


def test_a_mark_may_move_back_when_kaltura_clock_does(tmp_path: Path) -> None:
    # The mark is Kaltura's clock as it answered: an earlier reading widens the next window
    # (safe), it never keeps a later one that Kaltura's new clock would not reach.
    with StateStore.open(tmp_path) as store:
        watch = Watch(lambda: store.watch_mark)
        watch.cycle_done(T)
        watch.done(checked(T - 300), acting=True)
        assert watch.mark() == T - 300


def test_a_cycle_without_a_first_mark_records_none() -> None:
    watch = Watch(lambda: pytest.fail("the store is not touched"))  # type: ignore[arg-type]
    watch.cycle_done(None)
    watch.follow(PLAN)
    assert watch.in_flight == in_flight(PLAN)


def seen(entry_id: str, restore: RestoreStatus) -> Assessment:
    """An assessment as the pipeline hands the thaw clock one (only its entry is read)."""
    copy = ArchiveFacts(key=entry_id, size_bytes=1, storage_class="GLACIER", restore=restore,
                        layout="legacy")
    entry = ObservedEntry(entry_id=entry_id, name="", user_id="", creator_id="", status=2,
                          media_type=1, created_at=T, updated_at=T, last_played_at=T, plays=1,
                          duration=1, archive=copy)
    return cast(Assessment, SimpleNamespace(entry=entry))


def test_a_check_times_the_thaws_it_saw_and_the_next_cycle_publishes_them() -> None:
    waits: list[float] = []
    now = [100.0]
    clock = ThawClock(waits.append, clock=lambda: now[0])
    clock.requested("0_aaaaaaaa", Action.THAW.value, "done")
    clock.requested("0_bbbbbbbb", Action.THAW.value, "done")
    now[0] = 160.0
    # A restore check saw only the first, thawed; the second was not observed at all.
    clock.see(seen("0_aaaaaaaa", RestoreStatus.THAWED))
    clock.cycle_done(only={"0_aaaaaaaa"})
    assert waits == []  # timed, not published before the cycle's thaw gauge moves
    now[0] = 200.0
    # The cycle: the first is restored by now (its copy reads otherwise), the second thawed.
    clock.see(seen("0_aaaaaaaa", RestoreStatus.FROZEN))
    clock.see(seen("0_bbbbbbbb", RestoreStatus.THAWED))
    clock.cycle_done()
    assert waits == [60.0, 100.0]  # the first as the check timed it, the second still timed
