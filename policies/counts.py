"""The counts karchive reports, each defined once: entries by state, unhealthy, thaws.

The last step of the pure core, beside the diff: ``policies.plan.diff`` feeds every entry it
classifies into a :class:`Tally`, and the resulting :class:`Census` rides on the Plan. ``karchive
plan`` (its opening table and ``--json`` summary), the reports (``stats``, ``health``, ``list``),
the daemon's ``/metrics`` and so the alert rules and the Grafana dashboard all read these figures
and never count for themselves, so they agree by construction.

The definitions:

- **entries by observed state** (``by_state``; ``karchive_entries_observed{state}``): every
  entry observed, once, in the state :func:`reported_state` gives — ``policies.state.classify``'s,
  except that a placeholder whose archive copy is being thawed counts as ``restoring``: its
  content is on its way back (design.md, "States of an entry"); and so does an entry left with
  no content that the plan recovers from its copy (its ``thaw``, ``wait`` or ``recover`` item).
  Kaltura swapping content in either direction is ``restoring`` already.
- **unhealthy, managed** (``unhealthy_managed``; ``karchive_entries_unhealthy{managed="yes"}``):
  an unhealthy entry the policy manages or that karchive has touched (its tags, or a copy in
  the archive) — karchive would act on it but cannot. The plan lists each one with ``!``, and
  these are exactly its ``unhealthy`` items.
- **unhealthy, unmanaged** (``..._unmanaged``; ``{managed="no"}``): every other unhealthy
  entry (an entry still uploading or converting, one in error, one without content, none of
  them karchive's business): reported by ``karchive health``, never by the plan's items.
  The two always add up to ``by_state["unhealthy"]``.
- **thaws in progress** (``thaws_in_progress``; ``karchive_thaws_in_progress``): entries whose
  archive copy has a Glacier restore running (:func:`thawing`), whatever the policy wants.
- **entries by desired state** (``by_desired``; ``karchive_entries_desired{state}``).
- **in grace** (``in_grace``; ``karchive_entries_in_grace``): entries the plan would swap or
  purge whose owner was told and whose grace period has not ended (``policies.notices``:
  ``grace`` or ``remind``) — held, with the date they become due.
- **awaiting notice** (``awaiting_notice``; ``karchive_entries_awaiting_notice``): entries the
  plan would swap or purge whose owner has not been told yet (``notice``) — held until a notice
  is accepted; those of an owner with no address or a bounced one stay here.
  ``in_grace + awaiting_notice`` is what the plan calls *held for notices*.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from policies.desired import Decision
from policies.observed import ObservedEntry, RestoreStatus
from policies.schema import DesiredState
from policies.state import Observation, ObservedState

STATES = tuple(state.value for state in ObservedState)
DESIRED = tuple(state.value for state in DesiredState)


def thawing(entry: ObservedEntry) -> bool:
    """The entry's archive copy has a Glacier restore in progress."""
    return entry.archive is not None and entry.archive.restore is RestoreStatus.THAWING


# The plan items of an emptied entry on its way back from its copy (policies.plan's actions).
_RECOVERING = frozenset({"thaw", "wait", "recover"})
_UNHEALTHY_ITEM = "unhealthy"
# The notice statuses (policies.notices.Status values) that hold an entry's swap or purge.
_IN_GRACE = frozenset({"grace", "remind"})
_AWAITING = "notice"


def reported_state(entry: ObservedEntry, observation: Observation,
                   action: str | None = None) -> ObservedState:
    """The state every report counts ``entry`` in (see the module docstring); ``action`` is
    the value of the plan's item for the entry, if it has one."""
    if observation.state is ObservedState.PLACEHOLDER and thawing(entry):
        return ObservedState.RESTORING
    if observation.recoverable and action in _RECOVERING:
        return ObservedState.RESTORING
    return observation.state


def _zeros(names: tuple[str, ...]) -> dict[str, int]:
    return dict.fromkeys(names, 0)


@dataclass(frozen=True, slots=True)
class Census:
    """What one observation holds, counted by the definitions above. Every state is a key."""

    entries: int = 0
    by_state: Mapping[str, int] = field(default_factory=lambda: _zeros(STATES))
    by_desired: Mapping[str, int] = field(default_factory=lambda: _zeros(DESIRED))
    unhealthy_managed: int = 0
    unhealthy_unmanaged: int = 0
    thaws_in_progress: int = 0
    in_grace: int = 0
    awaiting_notice: int = 0

    @property
    def unhealthy(self) -> int:
        return self.unhealthy_managed + self.unhealthy_unmanaged

    @property
    def held(self) -> int:
        """Entries whose swap or purge waits on their owner's notice."""
        return self.in_grace + self.awaiting_notice


class Tally:
    """Counts entries as the diff meets them; :meth:`census` freezes the result."""

    __slots__ = ("_entries", "_states", "_desired", "_managed", "_unmanaged", "_thaws",
                 "_grace", "_awaiting")

    def __init__(self) -> None:
        self._entries = 0
        self._states = _zeros(STATES)
        self._desired = _zeros(DESIRED)
        self._managed = 0
        self._unmanaged = 0
        self._thaws = 0
        self._grace = 0
        self._awaiting = 0

    def add(self, entry: ObservedEntry, observation: Observation, decision: Decision,
            action: str | None, notice: str | None = None) -> None:
        """One entry; ``action``: the value of the plan's item for it, or None; ``notice``: the
        status of its notice verdict, when the policy has notices."""
        self._entries += 1
        state = reported_state(entry, observation, action)
        self._states[state.value] += 1
        self._desired[decision.state.value] += 1
        if state is ObservedState.UNHEALTHY:
            if action == _UNHEALTHY_ITEM:
                self._managed += 1
            else:
                self._unmanaged += 1
        if thawing(entry):
            self._thaws += 1
        if notice in _IN_GRACE:
            self._grace += 1
        elif notice == _AWAITING:
            self._awaiting += 1

    def census(self) -> Census:
        return Census(self._entries, dict(self._states), dict(self._desired), self._managed,
                      self._unmanaged, self._thaws, self._grace, self._awaiting)
