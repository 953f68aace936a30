"""The plan's figures: per action and per rule (count and bytes), and this cycle's share.

Part of the plan's output, beside ``policies.plan`` (which owns the items) and
``policies.counts`` (what was observed): :func:`compute` sums a plan's rows into
:class:`PlanTotals`, which ``karchive plan`` prints as its opening table (:func:`table`) and
writes as the ``summary`` object of its ``--json`` file (:func:`to_json` / :func:`from_json`).

:func:`admit` is the one definition of what a cycle's limits let through
(``limits.transitions_per_cycle``, ``limits.bytes_per_cycle``): the executor selects with it and
the plan predicts with it, so "100 of 1,277 run this cycle" in the plan is what apply then does
(less any entry still backing off from earlier failures, which only the journal knows).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from policies.durations import format_size
from policies.schema import Limits

TRANSITIONS_LIMIT = "limits.transitions_per_cycle"
BYTES_LIMIT = "limits.bytes_per_cycle"
NO_RULE_LABEL = "(no rule)"


class Sized(Protocol):
    @property
    def bytes(self) -> int: ...


S = TypeVar("S", bound=Sized)


@dataclass(frozen=True, slots=True)
class CycleLimits:
    """The per-cycle limits of the policy, as the plan records them."""

    transitions: int
    bytes: int

    @classmethod
    def of(cls, limits: Limits) -> CycleLimits:
        return cls(limits.transitions_per_cycle, limits.bytes_per_cycle)


def admit(items: Iterable[S], limits: CycleLimits) -> Iterator[tuple[S, str | None]]:
    """Each item with ``None`` when this cycle may run it, else the name of the limit that
    defers it. In order: the first ``transitions`` items whose bytes fit the byte budget (the
    first item always fits, so one huge video cannot stall every cycle)."""
    chosen = spent = 0
    for item in items:
        if chosen >= limits.transitions:
            yield item, TRANSITIONS_LIMIT
        elif chosen and spent + item.bytes > limits.bytes:
            yield item, BYTES_LIMIT
        else:
            chosen += 1
            spent += item.bytes
            yield item, None


@dataclass(frozen=True, slots=True)
class Amount:
    """How many items, and how many bytes they copy or restore."""

    count: int = 0
    bytes: int = 0

    def plus(self, size: int) -> Amount:
        return Amount(self.count + 1, self.bytes + size)

    def to_json(self) -> dict[str, int]:
        return {"count": self.count, "bytes": self.bytes}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Amount:
        return cls(int(raw["count"]), int(raw["bytes"]))


@dataclass(frozen=True, slots=True)
class CycleShare:
    """What this cycle's limits let through of the plan's changes, and what they defer."""

    limits: CycleLimits
    admitted: Amount
    deferred: Mapping[str, Amount] = field(default_factory=dict)  # by limit name

    @property
    def deferred_count(self) -> int:
        return sum(amount.count for amount in self.deferred.values())


@dataclass(frozen=True, slots=True)
class NoticeTotals:
    """The owner notices of a plan: swaps and purges held (``policies.counts``' in_grace +
    awaiting_notice, of which ``in_grace`` were told), and the owners to tell this cycle."""

    held: int = 0
    in_grace: int = 0
    owners: int = 0  # owners the plan sends a notice or reminder to
    entries: int = 0  # the entries those messages list


@dataclass(frozen=True, slots=True)
class PlanTotals:
    """Every figure of the plan's summary."""

    actions: Mapping[str, Amount]  # executable actions in plan order, those with items
    rules: Mapping[str, Amount]  # the executable items of each rule, by rule name
    changes: Amount
    unhealthy_managed: int
    unhealthy_unmanaged: int
    waiting: int
    this_cycle: CycleShare | None  # None: the plan does not know the policy's limits
    notices: NoticeTotals = NoticeTotals()


@dataclass(frozen=True, slots=True)
class Row:
    """One plan item as the totals see it."""

    action: str
    executable: bool
    rule: str
    bytes: int


def compute(rows: Iterable[Row], order: Iterable[str], *, unhealthy_action: str,
            wait_action: str, unhealthy_unmanaged: int, limits: CycleLimits | None,
            notices: NoticeTotals = NoticeTotals()) -> PlanTotals:
    """Sum ``rows`` (in execution order); ``order`` names the executable actions in plan order."""
    actions: dict[str, Amount] = {}
    rules: dict[str, Amount] = {}
    changes: list[Row] = []
    unhealthy = waiting = 0
    for row in rows:
        if row.executable:
            changes.append(row)
            actions[row.action] = actions.get(row.action, Amount()).plus(row.bytes)
            name = row.rule or NO_RULE_LABEL
            rules[name] = rules.get(name, Amount()).plus(row.bytes)
        elif row.action == unhealthy_action:
            unhealthy += 1
        elif row.action == wait_action:
            waiting += 1
    total = Amount(len(changes), sum(row.bytes for row in changes))
    share = None
    if limits is not None:
        admitted = Amount()
        deferred: dict[str, Amount] = {}
        for row, limit in admit(changes, limits):
            if limit is None:
                admitted = admitted.plus(row.bytes)
            else:
                deferred[limit] = deferred.get(limit, Amount()).plus(row.bytes)
        share = CycleShare(limits, admitted, deferred)
    ordered = {name: actions[name] for name in order if name in actions}
    return PlanTotals(ordered, dict(sorted(rules.items())), total, unhealthy,
                      unhealthy_unmanaged, waiting, share, notices)


# -- the opening table ---------------------------------------------------------------------------

def _size(size: int) -> str:
    return format_size(size) if size else ""


def _rows(title: str, amounts: Mapping[str, Amount], total: Amount | None) -> list[str]:
    width = max([len(title), len("total"), *(len(name) for name in amounts)])
    lines = [f"  {title:<{width}}  {'entries':>9}  {'size':>10}"]
    lines += [f"  {name:<{width}}  {amount.count:>9,}  {_size(amount.bytes):>10}".rstrip()
              for name, amount in amounts.items()]
    if total is not None:
        lines.append(f"  {'total':<{width}}  {total.count:>9,}  {_size(total.bytes):>10}"
                     .rstrip())
    return lines


def table(totals: PlanTotals) -> list[str]:
    """The lines that open a plan: changes per action and per rule, this cycle's share, and
    what is reported but not acted on. Empty when there is nothing to say."""
    lines: list[str] = []
    if totals.actions:
        lines += _rows("action", totals.actions, totals.changes)
        lines.append("")
        lines += _rows("rule", totals.rules, None)
        lines.append("")
    share = totals.this_cycle
    if share is not None and share.deferred_count:
        limits = share.limits
        named = {TRANSITIONS_LIMIT: f"{TRANSITIONS_LIMIT}: {limits.transitions:,}",
                 BYTES_LIMIT: f"{BYTES_LIMIT}: {format_size(limits.bytes)}"}
        lines.append(f"  This cycle: {share.admitted.count:,} of {totals.changes.count:,} "
                     f"changes run ({format_size(share.admitted.bytes)}); the rest wait for "
                     "later cycles:")
        lines += [f"    {amount.count:,} deferred by {named[limit]}"
                  for limit, amount in share.deferred.items()]
    reported = []
    if totals.unhealthy_managed:
        reported.append(f"{totals.unhealthy_managed:,} unhealthy that karchive manages "
                        "(the ! lines below)")
    if totals.unhealthy_unmanaged:
        reported.append(f"{totals.unhealthy_unmanaged:,} unhealthy that it does not manage "
                        "(`karchive health` lists them)")
    if totals.waiting:
        reported.append(f"{totals.waiting:,} waiting on a thaw or on Kaltura")
    notices = totals.notices
    if notices.held:
        reported.append(f"{notices.held:,} swaps or purges held for their owners' notices "
                        f"({notices.in_grace:,} told, in their grace period)")
    if notices.owners:
        lines.append(f"  Owner notices: {notices.owners:,} owners to tell of "
                     f"{notices.entries:,} entries (the ✉ lines below)")
    if reported:
        lines.append("  Not acted on:")
        lines += [f"    {line}" for line in reported]
    if lines and lines[-1] != "":
        lines.append("")
    return lines


# -- the summary object of the plan file ---------------------------------------------------------

def to_json(totals: PlanTotals) -> dict[str, Any]:
    share = totals.this_cycle
    cycle = None if share is None else {
        "transitions_per_cycle": share.limits.transitions,
        "bytes_per_cycle": share.limits.bytes,
        "admitted": share.admitted.to_json(),
        "deferred": {limit: amount.to_json() for limit, amount in share.deferred.items()},
    }
    return {
        "actions": {name: amount.to_json() for name, amount in totals.actions.items()},
        "changes": totals.changes.to_json(),
        "rules": {name: amount.to_json() for name, amount in totals.rules.items()},
        "unhealthy": {"managed": totals.unhealthy_managed,
                      "unmanaged": totals.unhealthy_unmanaged},
        "waiting": totals.waiting,
        "this_cycle": cycle,
        "notices": {"held": totals.notices.held, "in_grace": totals.notices.in_grace,
                    "owners": totals.notices.owners, "entries": totals.notices.entries},
    }


def limits_from_json(raw: Mapping[str, Any]) -> CycleLimits | None:
    """The limits a plan file's summary recorded (``None`` when it recorded none)."""
    cycle = raw.get("this_cycle")
    if cycle is None:
        return None
    return CycleLimits(int(cycle["transitions_per_cycle"]), int(cycle["bytes_per_cycle"]))
