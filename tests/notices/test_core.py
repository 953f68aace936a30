"""The notice core (policies.notices): verdicts per entry and one letter per owner. Pure."""

from __future__ import annotations

import pytest

from policies.durations import Duration, TimeUnit
from policies.notices import (
    Consequence,
    Contact,
    Status,
    Subject,
    Timing,
    Unreachable,
    after,
    assess,
    letters,
)
from policies.observed import NoticeMark
from policies.plan import Action, PlanItem, consequence_of
from policies.schema import DesiredState
from policies.state import ObservedState

DAY = 86400
NOW = 1_800_000_000
TIMING = Timing(Duration(30, TimeUnit.DAY), (Duration(7, TimeUnit.DAY), Duration(1, TimeUnit.DAY)))


def subject(entry_id: str = "0_aaaaaaaa", owner: str = "ann", played: int | None = None,
            consequence: Consequence = Consequence.SWAP) -> Subject:
    return Subject(entry_id, owner, consequence, "old-lectures", "Lecture", 10 << 20, played)


def told(s: Subject, sent_at: int, due_at: int | None = None) -> NoticeMark:
    return NoticeMark(s.entry_id, sent_at, due_at if due_at is not None else sent_at + 30 * DAY,
                      s.digest)


def judge(s: Subject, *marks: NoticeMark, now: int = NOW) -> tuple[Status, int | None]:
    [verdict] = assess([s], {s.entry_id: marks} if marks else {}, TIMING, now)
    return verdict.status, verdict.due_at


S = subject()
CASES = [
    # Never told: the date a notice sent now would announce (what the plan shows).
    ("never told", [], NOW, Status.NOTICE, NOW + 30 * DAY),
    ("told today", [told(S, NOW)], NOW, Status.GRACE, NOW + 30 * DAY),
    ("10 days in", [told(S, NOW - 10 * DAY)], NOW, Status.GRACE, NOW + 20 * DAY),
    ("7 days left: first reminder", [told(S, NOW - 23 * DAY)], NOW, Status.REMIND,
     NOW + 7 * DAY),
    ("reminded at 7 days", [told(S, NOW - 23 * DAY), told(S, NOW)], NOW, Status.GRACE,
     NOW + 7 * DAY),
    ("1 day left after the 7-day reminder", [told(S, NOW - 29 * DAY), told(S, NOW - 6 * DAY)],
     NOW, Status.REMIND, NOW + 1 * DAY),
    ("missed both reminders: one is sent", [told(S, NOW - 29 * DAY - 3600)], NOW,
     Status.REMIND, NOW + DAY - 3600),
    ("exactly 30 days", [told(S, NOW - 30 * DAY)], NOW, Status.DUE, NOW),
    ("long ago", [told(S, NOW - 90 * DAY)], NOW, Status.DUE, NOW - 60 * DAY),
    # The owner was given a later date than the policy's period: that date holds.
    ("announced later than the period", [told(S, NOW - 31 * DAY, NOW + 5 * DAY)], NOW,
     Status.REMIND, NOW + 5 * DAY),
    # A policy now asking 30 days never shortens a date given under a longer period.
    ("shorter before later", [told(S, NOW - 40 * DAY, NOW - DAY)], NOW, Status.DUE, NOW - DAY),
]


@pytest.mark.parametrize(("why", "marks", "now", "status", "due"), CASES,
                         ids=[c[0] for c in CASES])
def test_verdicts_follow_the_grace_period(why: str, marks: list[NoticeMark], now: int,
                                          status: Status, due: int | None) -> None:
    assert judge(S, *marks, now=now) == (status, due)


def test_a_play_after_the_notice_starts_a_new_notice_and_drops_the_old_record() -> None:
    played = subject(played=NOW - 5 * DAY)
    mark = told(played, NOW - 40 * DAY)
    [verdict] = assess([played], {played.entry_id: [mark]}, TIMING, NOW)
    assert verdict.status is Status.NOTICE and not verdict.allows_change
    assert verdict.drop == (mark,)
    # A play before the notice changes nothing: the owner was told after it.
    earlier = subject(played=NOW - 50 * DAY)
    assert judge(earlier, told(earlier, NOW - 40 * DAY)) == (Status.DUE, NOW - 10 * DAY)


@pytest.mark.parametrize("change", ["consequence", "owner"])
def test_a_notice_of_something_else_is_no_notice(change: str) -> None:
    old = subject()
    new = (subject(consequence=Consequence.PURGE) if change == "consequence"
           else subject(owner="bob"))
    stale = told(old, NOW - 60 * DAY)
    [verdict] = assess([new], {new.entry_id: [stale]}, TIMING, NOW)
    assert verdict.status is Status.NOTICE and verdict.drop == (stale,)


def test_an_entry_no_longer_selected_is_cancelled_with_its_record() -> None:
    kept = subject("0_kkkkkkkk")
    marks = {kept.entry_id: [told(kept, NOW - 3 * DAY)]}
    [verdict] = assess([], marks, TIMING, NOW)
    assert verdict.status is Status.CANCELLED and verdict.drop == tuple(marks[kept.entry_id])


def test_only_a_due_verdict_allows_the_change() -> None:
    allowed = {status for _, marks, now, status, _ in CASES
               if assess([S], {S.entry_id: marks}, TIMING, now)[0].allows_change}
    assert allowed == {Status.DUE}


def test_calendar_months_are_added_like_the_policy_subtracts_them() -> None:
    jan31 = 1_769_817_600  # 2026-01-31 00:00 UTC
    assert after(Duration(1, TimeUnit.MONTH), jan31) == 1_772_236_800  # 2026-02-28
    assert after(Duration(30, TimeUnit.DAY), jan31) == jan31 + 30 * DAY


@pytest.mark.parametrize(("action", "expected"), [
    (Action.REPLACE, Consequence.SWAP), (Action.DELETE, Consequence.PURGE),
    (Action.ARCHIVE, None), (Action.RESTORE, None), (Action.THAW, None), (Action.REPAIR, None),
    (Action.RECOVER, None), (Action.WAIT, None), (Action.UNHEALTHY, None),
])
def test_only_swaps_and_purges_need_a_notice(action: Action, expected: Consequence | None) -> None:
    item = PlanItem("0_aaaaaaaa", action, ObservedState.ORIGINAL, DesiredState.PLACEHOLDER, (),
                    "rule", 0, "why", "f")
    assert consequence_of(item) is expected


def test_one_letter_per_owner_listing_all_their_entries() -> None:
    ann1, ann2, bob = subject("0_aaaaaaa1"), subject("0_aaaaaaa2"), subject("0_bbbbbbb1", "bob")
    reminded = subject("0_aaaaaaa3")
    verdicts = assess([ann2, bob, ann1, reminded],
                      {reminded.entry_id: [told(reminded, NOW - 23 * DAY)]}, TIMING, NOW)
    book = {"ann": Contact("ann@example.edu", "Ann"), "bob": Contact("bob@example.edu")}
    sent, held = letters(verdicts, book.get, TIMING, NOW)
    assert held == []
    assert [(letter.owner, [v.entry_id for v in letter.verdicts]) for letter in sent] == [
        ("ann", ["0_aaaaaaa1", "0_aaaaaaa2", "0_aaaaaaa3"]), ("bob", ["0_bbbbbbb1"])]
    ann = sent[0]
    assert ann.due_at == {"0_aaaaaaa1": NOW + 30 * DAY, "0_aaaaaaa2": NOW + 30 * DAY,
                          "0_aaaaaaa3": NOW + 7 * DAY}
    assert not ann.reminder
    marks = ann.marks(NOW + 5)
    assert {(m.entry_id, m.sent_at, m.due_at) for m in marks} == {
        ("0_aaaaaaa1", NOW + 5, NOW + 30 * DAY), ("0_aaaaaaa2", NOW + 5, NOW + 30 * DAY),
        ("0_aaaaaaa3", NOW + 5, NOW + 7 * DAY)}


def test_the_same_notice_sent_again_carries_the_same_notice_id() -> None:
    a, b = subject("0_aaaaaaa1"), subject("0_aaaaaaa2")
    book = {"ann": Contact("ann@example.edu")}
    first = letters(assess([a, b], {}, TIMING, NOW), book.get, TIMING, NOW)[0][0]
    again = letters(assess([b, a], {}, TIMING, NOW + 3600), book.get, TIMING, NOW + 3600)[0][0]
    other = letters(assess([a], {}, TIMING, NOW), book.get, TIMING, NOW)[0][0]
    assert first.notice_id == again.notice_id != other.notice_id


@pytest.mark.parametrize(("book", "bounced", "reason"), [
    ({}, frozenset(), Unreachable.NO_ADDRESS),
    ({"ann": Contact("")}, frozenset(), Unreachable.NO_ADDRESS),
    ({"ann": Contact("Ann@Example.edu")}, frozenset({"ann@example.edu"}), Unreachable.BOUNCED),
])
def test_an_owner_who_cannot_be_told_holds_their_entries(
        book: dict[str, Contact], bounced: frozenset[str], reason: Unreachable) -> None:
    new, reminded = subject("0_aaaaaaa1"), subject("0_aaaaaaa2")
    verdicts = assess([new, reminded], {reminded.entry_id: [told(reminded, NOW - 23 * DAY)]},
                      TIMING, NOW)
    sent, held = letters(verdicts, book.get, TIMING, NOW, bounced)
    assert sent == []
    [who] = held
    assert (who.owner, who.reason) == ("ann", reason)
    assert who.entry_ids == ("0_aaaaaaa1", "0_aaaaaaa2")
    assert who.holding == ("0_aaaaaaa1",)  # the reminded one was told: it is not held
    assert [v.status for v in verdicts] == [Status.NOTICE, Status.REMIND]
