"""The restore watch: the daemon's restore check, a few Kaltura calls whatever the catalogue's size.

Between the daemon's cycles (``runtime/daemon.py``), every ``schedule.restore_check_interval``,
the check asks Kaltura only for what can move an entry along the restore path:

    placeholders played since the mark   one media.list: karchive's placeholder tag and
                                         lastPlayedAtGreaterThanOrEqual = mark - OVERLAP, with
                                         Kaltura's clock read in the same request (the next mark)
    the thaws and restores in flight     their ids, from the last plan (a thaw in flight still
                                         needs its restore once the copy is warm)
    → Pipeline.run(entry_ids=…)          the one pipeline, as a saved plan uses it: an idIn walk
                                         (500 ids a call) and one flavor multirequest
    → the restore path of that plan      thaw, restore, wait and the tag repairs they start from;
                                         archives, swaps, purges and owners' notices stay the
                                         full cycle's (they need the whole census and guard)
    → the executor                       run by the daemon under the lease, suspend, plan-only
                                         and the per-cycle limits, like a cycle's plan

So a played placeholder's thaw is requested by the same code as a full cycle's, for three
Kaltura requests while fewer than 500 placeholders are played within the overlap or in flight.

The mark is Kaltura's clock (never this machine's) at the start of the last check or cycle that
acted, kept in the state store (``runtime/state.py``: ``WatchMark``) so that a restart asks for
the plays made while it was down. With no mark yet, the first acting cycle records one (one
``system.getTime``); a check with no mark runs a full cycle. A check that does not act (plan-only,
standby, suspended) reports what it would do and never moves the recorded mark (it keeps its
own in memory, so its window stays bounded): the daemon that acts next still asks for every
play since it last acted. Without ``restore_on_play`` a play changes nothing the check could
act on: it then only follows the entries in flight.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from controller.adapters.kaltura.read import iter_entries, server_time
from controller.compose import Adapters
from controller.errors import PermanentError, Source
from controller.runtime.pipeline import Each, Pipeline
from controller.runtime.state import WatchMark
from policies.observed import TAG_REPLACED
from policies.plan import Action, Plan

# How far before the mark a check looks again. A play does not set lastPlayedAt when it
# happens: Kaltura's analytics sync writes it later, with the play's own time
# (reference/kaltura-api.md §6: alpha/scripts/kava/updateEntryPlaysViews.php), so a play made
# just before one check can become visible only after it, dated before its mark. The lag is
# not in Kaltura's source; the sync holds its lock for up to a day ("a bit under 24 Hours"),
# so a day of overlap covers a sync run that takes all of it, and any skew between the
# analytics clock and the API's. Looking again costs almost nothing: a placeholder found again
# is one a play is bringing back (in flight anyway, and untagged once restored), so the
# overlap adds ids to the idIn walk it makes for the entries in flight, not calls.
OVERLAP = 24 * 3600
# Every placeholder carries this tag, karchive's and the Princeton tool's alike
# (policies.state: legacy_placeholder; restore_on_play reads it: policies.desired). Kaltura
# matches tagsMultiLikeOr (and tagsLike) as a full-text match on whole words of the tags
# (kaltura/server plugins/search/providers/sphinx_search/lib/SphinxCriteria.php, MULTI_LIKE_OR
# and LIKE both become "@tags term"); one term, so the two are the same here. A looser match
# (a tag "flavors deleted") only adds an entry the pipeline then classifies by its real tags.
PLACEHOLDER_TAGS = {"tagsMultiLikeOr": TAG_REPLACED}
# Kaltura reads |v| <= 315360000 in a time filter as relative to now (reference §5).
_RELATIVE_TIME_LIMIT = 315_360_000
# What a check acts on: the restore path, and the tag fixes a thaw waits behind.
RESTORE_PATH = frozenset({Action.THAW, Action.RESTORE, Action.WAIT, Action.REPAIR})
IN_FLIGHT = frozenset({Action.THAW, Action.RESTORE, Action.WAIT})


def kaltura_time(value: int) -> int:
    """``value`` as a mark: Kaltura's clock in unix seconds; a value Kaltura would read as
    relative (or none at all) is refused, never taken for a date."""
    if value <= _RELATIVE_TIME_LIMIT:
        raise PermanentError(f"Kaltura's clock answered {value}, which is not a date; the "
                             "restore check cannot tell which plays are new",
                             source=Source.KALTURA)
    return value


def window_start(mark: int, overlap: int = OVERLAP) -> int:
    """The lastPlayedAt a check lists from: the mark less the overlap."""
    return kaltura_time(kaltura_time(mark) - overlap)


def played_filter(since: int) -> dict[str, object]:
    """The watch's media.list filter: placeholders played at or after ``since``."""
    return {**PLACEHOLDER_TAGS, "lastPlayedAtGreaterThanOrEqual": since}


def in_flight(plan: Plan) -> frozenset[str]:
    """The entries a plan thaws, restores or waits on: what the next check follows by id."""
    return frozenset(item.entry_id for item in plan.items if item.action in IN_FLIGHT)


def restore_path(plan: Plan) -> Plan:
    """``plan`` narrowed to what a check acts on (its notices are the full cycle's)."""
    return replace(plan, items=tuple(i for i in plan.items if i.action in RESTORE_PATH),
                   notices=())


@dataclass(frozen=True, slots=True)
class Checked:
    """What one check found and the plan it made (None: nothing to observe)."""

    played: int  # placeholders the listing found (played within the window)
    followed: int  # entries in flight observed by id beside them
    observed: frozenset[str]  # the ids the pipeline was asked about
    since: int | None  # the listing's lastPlayedAt bound (None: no listing)
    checked_at: int | None  # Kaltura's clock when the listing ran: the next mark
    plan: Plan | None
    kaltura_calls: int


class Watch:
    """The mark, the entries in flight, and one check at a time (the daemon's cycle lock)."""

    def __init__(self, marks: Callable[[], WatchMark]) -> None:
        self._marks = marks  # the state store's, opened on first use
        self.in_flight: frozenset[str] = frozenset()
        self._looked: int | None = None  # a non-acting check's own mark, never recorded

    def mark(self) -> int | None:
        return self._marks().get()

    def needs_cycle(self, adapters: Adapters, acting: bool) -> bool:
        """No mark to list from: an acting daemon runs a full cycle instead (it records one)."""
        return acting and adapters.policy.restore_on_play and self.mark() is None

    # -- around a full cycle ---------------------------------------------------------------------
    def cycle_starting(self, adapters: Adapters, acting: bool) -> int | None:
        """Kaltura's clock before an acting cycle when no mark is recorded yet (one
        ``system.getTime``, once in a state directory's life); None otherwise."""
        if not acting or self.mark() is not None:
            return None
        return kaltura_time(server_time(adapters.kaltura))

    def follow(self, plan: Plan) -> None:
        """A cycle's plan names the entries in flight."""
        self.in_flight = in_flight(plan)

    def cycle_done(self, started: int | None) -> None:
        """An acting cycle's start (:meth:`cycle_starting`) is the first mark: it saw every
        play made before it began, and acted on them."""
        if started is not None:
            self._marks().set(started)

    # -- the check -------------------------------------------------------------------------------
    def check(self, adapters: Adapters, *, acting: bool, each: Each | None = None) -> Checked:
        """List the played placeholders, then plan them and the entries in flight."""
        counter = adapters.metrics
        before = getattr(counter, "kaltura_total", 0)
        since, checked_at, played = self._played(adapters, acting)
        ids = sorted(set(played) | self.in_flight)
        plan = None
        if ids:
            # The machine's clock for the rules, as a cycle's (and no system.getTime for the
            # notices: the check sends none).
            pipeline = Pipeline(adapters, now=int(time.time()))
            plan = restore_path(pipeline.run(entry_ids=ids, each=each).plan)
        spent = getattr(counter, "kaltura_total", 0) - before
        return Checked(len(played), len(self.in_flight - set(played)), frozenset(ids), since,
                       checked_at, plan, spent)

    def done(self, checked: Checked, acting: bool) -> None:
        """After the check's plan was executed (or reported): the next check's entries in
        flight, and its mark — recorded only when this check acted."""
        if checked.plan is not None:
            self.in_flight = in_flight(checked.plan)
        if checked.checked_at is None:
            return
        if acting:
            self._marks().set(checked.checked_at)
            self._looked = None
        else:
            self._looked = checked.checked_at

    def _played(self, adapters: Adapters, acting: bool
                ) -> tuple[int | None, int | None, list[str]]:
        """(the listing's bound, Kaltura's clock, the placeholders played since the bound)."""
        if not adapters.policy.restore_on_play:
            return None, None, []
        mark = self.mark()
        if not acting and self._looked is not None:
            mark = self._looked
        if mark is None:
            return None, None, []  # nothing to list from: the cycles report the rest
        since = window_start(mark)
        clock: list[int] = []
        found = [entry.entry_id for entry in
                 iter_entries(adapters.kaltura, played_filter(since), on_clock=clock.append)]
        return since, kaltura_time(clock[0]), found
