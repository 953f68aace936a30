"""The pure diff: observed entries + policy → Plan, the list of transitions `apply` executes.

The diff stage of the pipeline (``controller/runtime/pipeline.py``), the last step of the pure
core: for each entry ``policies.state`` says what it is and ``policies.desired`` what the policy
wants — once, in an :class:`Assessment` (:class:`Assessor`) — and the diff emits one
:class:`PlanItem` per entry that needs a change, naming the reconcilers that carry it out (by
the names they are registered under in ``reconcilers.registry``, where each declares its own
steps) and a fingerprint of the facts the item depends on, so ``karchive apply PLAN_FILE``
refuses items whose entry changed since. :class:`PlanBuilder` accumulates the items a page at a
time; :func:`diff` is the whole pure function ``(desired, observed) → Plan``. Entries that break
an invariant become ``unhealthy`` items (reported, never executed); entries waiting on a thaw or
on Kaltura's conversion become ``wait`` items. With a ``notices:`` section, a swap or purge is
first announced to the entry's owner (``policies.notices``, from the notice markers the
observation read): until its grace period is over it becomes a ``hold`` item (a replace that
must archive first still archives: content kept needs no notice), and the owners to tell ride on
the plan as its ``notices`` (the ``✉ notify`` lines) for ``apply`` and the daemon to send. Every
entry is also counted once (``policies.counts``: entries by state, unhealthy managed and
unmanaged, thaws, held for notices), and that census rides on the plan, so the plan, the reports
and ``/metrics`` share one set of figures. The plan renders itself terraform-like (``karchive
plan``): an opening table of counts and bytes per action and per rule with what this cycle's
limits let through (``policies.totals``), the items, and a summary line; and it round-trips
through a versioned JSON file (``--out FILE`` / ``apply PLAN_FILE``).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Any, Protocol, runtime_checkable

from policies import totals as figures
from policies.counts import DESIRED, STATES, Census, Tally
from policies.desired import RESTORE_ON_PLAY, Decider, Decision
from policies.durations import format_size
from policies.notices import (
    Consequence,
    Subject,
    Timing,
    Verdict,
    held_reason,
    judge,
    notify_lines,
    verdict_from_json,
    verdict_to_json,
)
from policies.observed import TAG_ARCHIVED, TAG_REPLACED, ObservedEntry, RestoreStatus
from policies.schema import DesiredState, Policy
from policies.state import (
    EDITED_AFTER_ARCHIVAL,
    EMPTIED,
    STALE_COPY,
    UNVERIFIED_COPY,
    Observation,
    ObservedState,
    classify,
)
from policies.totals import CycleLimits, PlanTotals


class Action(StrEnum):
    ARCHIVE = "archive"
    REPLACE = "replace"  # archive first where needed, then swap in the placeholder
    THAW = "thaw"  # request a Glacier restore of the copy
    RESTORE = "restore"  # pull a readable copy back into Kaltura
    RECOVER = "recover"  # an entry left with no content: bring it back from its copy
    REPAIR = "repair"  # safe tag fixes only
    DELETE = "delete"  # archive fully, then delete the entry
    UNHEALTHY = "unhealthy"  # reported, never executed
    WAIT = "wait"  # a thaw or a replacement is under way: nothing to do yet
    HOLD = "hold"  # a swap or purge waiting on its owner's notice (policies.notices)

    @property
    def executable(self) -> bool:
        return self not in (Action.UNHEALTHY, Action.WAIT, Action.HOLD)


# Order of items in a plan (and of counts in its summary): the safest first. A thaw (a request
# S3 takes hours over, changing nothing) goes before the copies, so a cycle cut short by its
# limits still starts every thaw, and the restores it waits for come a cycle sooner.
ACTION_ORDER = (Action.REPAIR, Action.THAW, Action.ARCHIVE, Action.REPLACE, Action.RESTORE,
                Action.RECOVER, Action.DELETE, Action.UNHEALTHY, Action.HOLD, Action.WAIT)

# The reconcilers that carry out each kind of item, by their registered names, in the order
# they run (each declares its own steps, Kaltura actions and S3 permissions beside its code).
ARCHIVE = (Action.ARCHIVE.value,)
ARCHIVE_THEN_REPLACE = (Action.ARCHIVE.value, Action.REPLACE.value)
REPLACE = (Action.REPLACE.value,)
THAW = (Action.THAW.value,)
RESTORE = (Action.RESTORE.value,)
RECOVER = (Action.RECOVER.value,)
REPAIR = (Action.REPAIR.value,)
DELETE = (Action.DELETE.value,)  # it archives (and verifies) everything itself first
CHAINS = (ARCHIVE, ARCHIVE_THEN_REPLACE, REPLACE, THAW, RESTORE, RECOVER, REPAIR, DELETE)

DELETE_HEADER = ("{n} entries will be DELETED from Kaltura (each archived completely and "
                 "verified first):")
WAIT_THAW = "waiting for the thaw to finish"
WAIT_KALTURA = "waiting for Kaltura to finish a replacement"
ARCHIVE_THEN = "; archive, then replace"


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One entry's transition: what is, what should be, how, and why."""

    entry_id: str
    action: Action
    from_state: ObservedState
    to_state: DesiredState
    reconcilers: tuple[str, ...]  # who carries it out, in order (reconcilers.registry names)
    rule: str
    bytes: int
    reason: str
    fingerprint: str
    add_tags: tuple[str, ...] = ()  # repair only
    remove_tags: tuple[str, ...] = ()  # repair only
    # A swap or purge held for its owner's notice (a hold item, or an archive whose swap
    # waits): the notice status (policies.notices.Status) and when it becomes due.
    notice: str = ""
    due_at: int | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """What a plan was made for: a saved plan applies to this partner and archive only."""

    partner_id: int
    location: str  # the bucket name, or the directory's file:// url
    prefix: str

    @classmethod
    def of(cls, policy: Policy) -> Target:
        return cls(policy.kaltura.partner_id, policy.storage.location, policy.storage.prefix)

    def __str__(self) -> str:
        where = self.location if "://" in self.location else f"s3://{self.location}/"
        return f"partner {self.partner_id}, {where.rstrip('/')}/{self.prefix}"


@dataclass(frozen=True, slots=True)
class Plan:
    """Every change one cycle would make, in execution order, plus what was reported."""

    # In execution order (ACTION_ORDER, then entry id); a big plan's wait on disk
    # (controller/runtime/spill.py), walked as often as needed, never copied whole.
    items: Sequence[PlanItem]
    planned_at: int  # the instant the policy was evaluated at (unix seconds)
    observed_count: int  # entries observed, for the apply guard on the share replaced
    target: Target | None = None  # None only for a plan built by hand (tests)
    # Every entry observed, counted once (policies.counts); all zeros for a hand-made plan.
    census: Census = field(default_factory=Census)
    limits: CycleLimits | None = None  # the policy's per-cycle limits, when the diff knew them
    # Owners' notices this plan sends (NOTICE and REMIND verdicts) and records it drops
    # (CANCELLED, or superseded markers): what ``apply`` and the daemon's cycle act on.
    notices: tuple[Verdict, ...] = ()

    @property
    def to_notify(self) -> tuple[Verdict, ...]:
        """The notices and reminders to send (the ``✉ notify`` lines)."""
        return tuple(v for v in self.notices if v.needs_message)

    @property
    def owners_to_notify(self) -> int:
        return len({v.subject.owner for v in self.to_notify if v.subject is not None})

    @property
    def changes(self) -> Iterator[PlanItem]:
        """The items ``apply`` executes, in order (a fresh walk each time it is read)."""
        return (item for item in self.items if item.action.executable)

    @property
    def has_changes(self) -> bool:
        return any(item.action.executable for item in self.items)

    def count(self, action: Action) -> int:
        if isinstance(self.items, CountedItems):
            return self.items.count_of(action)
        return sum(1 for item in self.items if item.action is action)

    @property
    def total_bytes(self) -> int:
        return sum(item.bytes for item in self.changes)

    def totals(self) -> PlanTotals:
        """Counts and bytes per action and per rule, the unhealthy split, what waits, and this
        cycle's share under the policy's limits: the plan's summary as figures."""
        rows = (figures.Row(i.action.value, i.action.executable, i.rule, i.bytes)
                for i in self.items)
        census = self.census
        notices = figures.NoticeTotals(census.held, census.in_grace, self.owners_to_notify,
                                       len(self.to_notify))
        return figures.compute(
            rows, (a.value for a in ACTION_ORDER if a.executable),
            unhealthy_action=Action.UNHEALTHY.value, wait_action=Action.WAIT.value,
            unhealthy_unmanaged=census.unhealthy_unmanaged, limits=self.limits,
            notices=notices)

    def summary(self) -> str:
        """``Plan: 12 to archive, 3 to replace, 1 to restore.`` (thaw, repair and delete counts
        when not zero), or ``No changes.``; then ``2 unhealthy, 1 waiting.`` when not zero (with
        the managed / unmanaged split when some are unmanaged); then, when the policy's limits
        defer part of the plan, how much this cycle runs."""
        if self.has_changes:
            counts = [f"{self.count(a)} to {a.value}"
                      for a in (Action.ARCHIVE, Action.REPLACE, Action.RESTORE)]
            counts += [f"{self.count(a)} to {a.value}"
                       for a in (Action.THAW, Action.RECOVER, Action.REPAIR, Action.DELETE)
                       if self.count(a)]
            text = f"Plan: {', '.join(counts)}."
        else:
            text = "No changes."
        totals = self.totals()
        managed, unmanaged = totals.unhealthy_managed, totals.unhealthy_unmanaged
        reported = []
        if managed + unmanaged:
            split = f" ({managed} managed, {unmanaged} unmanaged)" if unmanaged else ""
            reported.append(f"{managed + unmanaged} unhealthy{split}")
        reported += [f"{totals.waiting} waiting"] if totals.waiting else []
        notices = totals.notices
        reported += [f"{notices.held} held for notices"] if notices.held else []
        reported += [f"{notices.owners} owners to notify"] if notices.owners else []
        text = f"{text} {', '.join(reported)}." if reported else text
        share = totals.this_cycle
        if share is not None and share.deferred_count:
            text += (f" This cycle's limits let {share.admitted.count} of "
                     f"{totals.changes.count} run.")
        return text

    def render(self, color: bool = False) -> str:
        """Terraform-like: the opening table (``policies.totals.table``), one line per item,
        then the summary. Deletions come apart, last, under a header of their own. ``color``:
        ANSI colours (deletions red), for a terminal."""
        return "\n".join(self.render_lines(color))

    def render_lines(self, color: bool = False) -> Iterator[str]:
        """:meth:`render` a line at a time (a big plan is printed as it is read)."""
        opening = figures.table(self.totals())
        if opening:
            observed = datetime.fromtimestamp(self.planned_at, UTC).strftime("%Y-%m-%d %H:%M")
            yield f"Plan for {self.observed_count:,} entries observed at {observed} UTC:"
            yield ""
            yield from opening
        wrote = False
        for item in self.items:
            if item.action is not Action.DELETE:
                wrote = True
                yield _render_item(item, color)
        deletions = self.count(Action.DELETE)
        if deletions:
            yield from [""] if wrote else []
            header = DELETE_HEADER.format(n=deletions)
            yield f"\x1b[{_COLOURS[Action.DELETE]}m{header}\x1b[0m" if color else header
            wrote = True
            yield from (_render_item(item, color) for item in self.items
                        if item.action is Action.DELETE)
        notify = notify_lines(self.notices)
        if notify:
            yield from [""] if wrote else []
            yield from notify
            wrote = True
        if wrote:
            yield ""
        yield self.summary()

    def to_json(self) -> str:  # long: the docstring is the plan file's format
        """The plan file. Format (``format_version`` 4)::

            {"format_version": 4,
             "planned_at": <unix seconds the policy was evaluated at>,
             "observed_count": <entries observed>,
             "target": {"partner_id": 123, "location": "<bucket, or file:// url>",
                        "prefix": "karchive/"},
             "summary": {
               "actions": {"archive": {"count": 12, "bytes": <bytes>}, ...},  # with items only
               "changes": {"count": .., "bytes": ..},         # every executable item
               "rules": {"<rule>": {"count": .., "bytes": ..}, ...},   # executable items
               "unhealthy": {"managed": <the ! items>, "unmanaged": <reported elsewhere>},
               "waiting": <wait items>,
               "this_cycle": {"transitions_per_cycle": .., "bytes_per_cycle": ..,
                              "admitted": {"count": .., "bytes": ..},
                              "deferred": {"limits.transitions_per_cycle": {...}, ...}},
               "notices": {"held": .., "in_grace": .., "owners": .., "entries": ..},
               "observed": {"entries": .., "by_state": {"original": .., ...},
                            "by_desired": {"unmanaged": .., ...}, "thaws_in_progress": ..,
                            "in_grace": .., "awaiting_notice": ..}},
             "summary_text": "<the summary line, for people>",
             "items": [{"entry_id": "0_abc12345",
                        "action": "archive|replace|thaw|restore|recover|repair|delete|"
                                  "unhealthy|wait",
                        "from_state": "original|archived|placeholder|restoring|unhealthy",
                        "to_state": "unmanaged|archived|placeholder|deleted",
                        "reconcilers": ["archive", "replace"],
                        "rule": "<rule name, 'exempt', 'restore_on_play' or ''>",
                        "bytes": <bytes to copy or restore>,
                        "reason": "<why, one line>",
                        "fingerprint": "<sha256 hex of the observed facts>",
                        "add_tags": [...], "remove_tags": [...],
                        "notice": "<'' or the notice status holding a swap or purge>",
                        "due_at": <unix seconds it becomes due, or null>}],
             "notices": [{"entry_id": .., "status": "notice|remind", "owner": "<userId>",
                          "consequence": "swap|purge", "due_at": .., ...}]}  # ✉ lines

        ``this_cycle`` is null when the plan did not know the policy's limits. The counts are
        those of ``policies.counts`` and ``policies.totals``. Readers refuse another
        ``format_version``; unknown item keys are refused too.
        """
        out = io.StringIO()
        self.write_json(out)
        return out.getvalue()

    def write_json(self, out: IO[str]) -> None:
        """:meth:`to_json` into ``out``, an item a line as the items are read (a big plan is
        never one string in memory)."""
        census = self.census
        summary = figures.to_json(self.totals())
        summary["observed"] = {"entries": census.entries, "by_state": dict(census.by_state),
                               "by_desired": dict(census.by_desired),
                               "thaws_in_progress": census.thaws_in_progress,
                               "in_grace": census.in_grace,
                               "awaiting_notice": census.awaiting_notice}
        target = None if self.target is None else {
            "partner_id": self.target.partner_id, "location": self.target.location,
            "prefix": self.target.prefix}
        head = json.dumps({"format_version": FORMAT_VERSION, "planned_at": self.planned_at,
                           "observed_count": self.observed_count, "target": target,
                           "summary": summary, "summary_text": self.summary()},
                          indent=2, ensure_ascii=False)
        out.write(f'{head[:-2]},\n  "items": ')
        # One item a line: readable and diffable, and the C encoder (no indent) keeps a
        # 200,000-item plan fast to write.
        lines = (
            "    " + json.dumps({
                "entry_id": item.entry_id,
                "action": item.action.value,
                "from_state": item.from_state.value,
                "to_state": item.to_state.value,
                "reconcilers": list(item.reconcilers),
                "rule": item.rule,
                "bytes": item.bytes,
                "reason": item.reason,
                "fingerprint": item.fingerprint,
                "add_tags": list(item.add_tags),
                "remove_tags": list(item.remove_tags),
                "notice": item.notice,
                "due_at": item.due_at,
            }, ensure_ascii=False)
            for item in self.items
        )
        first = next(lines, None)
        if first is None:
            out.write("[]")
        else:
            out.write(f"[\n{first}")
            for line in lines:
                out.write(f",\n{line}")
            out.write("\n  ]")
        notices = json.dumps([verdict_to_json(v) for v in self.to_notify], ensure_ascii=False)
        out.write(f',\n  "notices": {notices}\n}}\n')

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Read a plan file written by :meth:`to_json`; :class:`PlanFormatError` otherwise."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanFormatError(f"not a plan file: invalid JSON at line {exc.lineno}; write "
                                  "it with 'karchive plan --out FILE'") from None
        except RecursionError:
            raise PlanFormatError("not a plan file: JSON nested too deeply; write it with "
                                  "'karchive plan --out FILE'") from None
        if not isinstance(document, dict):
            raise PlanFormatError("not a plan file: expected a JSON object; write it with "
                                  "'karchive plan --out FILE'")
        version = document.get("format_version")
        if version != FORMAT_VERSION:
            raise PlanFormatError(f"plan format_version {version!r} is not supported (this "
                                  f"karchive reads {FORMAT_VERSION}); plan again")
        try:
            items = tuple(_item_from_json(raw) for raw in document["items"])
            target = _target(document["target"])
            planned_at, observed = (_integer(document["planned_at"]),
                                    _integer(document["observed_count"]))
            summary = document["summary"]
            notices = tuple(verdict_from_json(raw) for raw in document["notices"])
            return cls(items, planned_at, observed, target, _census_from_json(summary),
                       figures.limits_from_json(summary), notices)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PlanFormatError(f"damaged plan file ({exc!s}); plan again") from None


# 2: a "target" (partner, archive location, prefix) a plan is refused outside, and the summary
# as structured counts ("summary", with the sentence as "summary_text").
# 3: an item names the "reconcilers" that carry it out (was: "steps", a copy of step names).
# 4: owner notices: "hold" items, an item's "notice" and "due_at", the plan's "notices" to send,
# and the held counts in the summary.
FORMAT_VERSION = 4

_SYMBOLS = {
    Action.ARCHIVE: "+", Action.REPLACE: "~", Action.RESTORE: "←", Action.THAW: "*",
    Action.REPAIR: "#", Action.DELETE: "-", Action.UNHEALTHY: "!", Action.WAIT: ".",
    Action.RECOVER: "↺", Action.HOLD: "⏸",
}  # fmt: skip
_COLOURS = {
    Action.ARCHIVE: "32", Action.REPLACE: "33", Action.RESTORE: "36", Action.THAW: "36",
    Action.REPAIR: "34", Action.DELETE: "1;31", Action.UNHEALTHY: "35", Action.WAIT: "2",
    Action.RECOVER: "36", Action.HOLD: "33",
}  # fmt: skip
_ITEM_KEYS = frozenset(PlanItem.__slots__)


class PlanFormatError(ValueError):
    """A plan file that cannot be read; ``str()`` is one line with the fix."""


def _render_item(item: PlanItem, color: bool) -> str:
    head = f"{_SYMBOLS[item.action]} {item.action.value} {item.entry_id}"
    if item.action in (Action.UNHEALTHY, Action.WAIT, Action.REPAIR, Action.HOLD):
        line = f"{head}: {item.reason}"
        line += f" (rule: {item.rule})" if item.rule and item.action is not Action.UNHEALTHY else ""
    else:
        details = [f"rule: {item.rule}"] if item.rule else []
        if item.action is Action.REPLACE and Action.ARCHIVE.value in item.reconcilers:
            # The copy is made (again) inside the replace: say so, with its bytes.
            details.append(f"{_archive_first(item.reason)} {format_size(item.bytes)} first")
        elif item.bytes:
            details.append(format_size(item.bytes))
        if item.notice:
            details.append(item.reason.rsplit("; ", 1)[-1])  # what the held swap waits for
        line = f"{head} ({', '.join(details)})" if details else head
    return f"\x1b[{_COLOURS[item.action]}m{line}\x1b[0m" if color else line


def _archive_first(reason: str) -> str:
    """What a replace does before its swap: archive, archive again, or verify the old tool's
    copy (else archive again)."""
    if reason.startswith(UNVERIFIED_COPY):
        return "verify the old copy or archive"
    if reason.startswith((EDITED_AFTER_ARCHIVAL, STALE_COPY)):
        return "re-archive"
    return "archive"


def _item_from_json(raw: dict[str, Any]) -> PlanItem:
    unknown = set(raw) - _ITEM_KEYS
    if unknown:
        raise ValueError(f"unknown item keys {sorted(unknown)}")
    return PlanItem(
        entry_id=str(raw["entry_id"]),
        action=Action(str(raw["action"])),
        from_state=ObservedState(str(raw["from_state"])),
        to_state=DesiredState(str(raw["to_state"])),
        reconcilers=_strings(raw["reconcilers"]),
        rule=str(raw["rule"]),
        bytes=_integer(raw["bytes"]),
        reason=str(raw["reason"]),
        fingerprint=str(raw["fingerprint"]),
        add_tags=_strings(raw.get("add_tags", [])),
        remove_tags=_strings(raw.get("remove_tags", [])),
        notice=str(raw["notice"]),
        due_at=None if raw["due_at"] is None else _integer(raw["due_at"]),
    )


def _census_from_json(summary: Mapping[str, Any]) -> Census:
    observed, unhealthy = summary["observed"], summary["unhealthy"]
    return Census(
        entries=int(observed["entries"]),
        by_state=_counts(observed["by_state"], STATES),
        by_desired=_counts(observed["by_desired"], DESIRED),
        unhealthy_managed=int(unhealthy["managed"]),
        unhealthy_unmanaged=int(unhealthy["unmanaged"]),
        thaws_in_progress=int(observed["thaws_in_progress"]),
        in_grace=int(observed["in_grace"]),
        awaiting_notice=int(observed["awaiting_notice"]),
    )


def _counts(raw: Any, names: tuple[str, ...]) -> dict[str, int]:
    if not isinstance(raw, Mapping) or set(raw) != set(names):
        raise ValueError(f"expected counts of {', '.join(names)}")
    return {name: int(raw[name]) for name in names}


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {value!r}")
    return value


def _target(raw: Any) -> Target:
    if not isinstance(raw, dict) or set(raw) != {"partner_id", "location", "prefix"} \
            or not isinstance(raw["location"], str) or not isinstance(raw["prefix"], str):
        raise ValueError("target must be {partner_id, location, prefix}")
    return Target(_integer(raw["partner_id"]), raw["location"], raw["prefix"])


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {value!r}")
    return tuple(value)


def fingerprint(entry: ObservedEntry) -> str:
    """sha256 (hex) of exactly the observed facts a transition depends on: tags, status,
    updatedAt, the original flavor, the archive copy, the replacement status. A saved plan's
    item whose entry no longer has this fingerprint is stale."""
    original = entry.original
    copy = entry.archive
    facts = (
        entry.entry_id,
        tuple(sorted(entry.tags)),
        entry.status,
        entry.updated_at,
        None if original is None else (original.flavor_id, original.size_bytes, original.status),
        None if copy is None else (copy.key, copy.size_bytes, copy.etag, copy.restore.value,
                                   copy.flavor_id, tuple(sorted(copy.placeholder_flavor_ids))),
        entry.replacement_status,
    )
    # repr of a tuple of str, int and None is canonical and far cheaper than JSON at 200k entries.
    canonical = repr(facts)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Assessment:
    """One entry, classified once: what it is (``policies.state.classify``), what the policy
    wants (``policies.desired``) and the plan's item between them (None: nothing to do). The
    pipeline hands these to whoever needs more than the plan (the reports, the daemon's thaw
    clock), so nobody classifies an entry a second time."""

    entry: ObservedEntry
    observation: Observation
    decision: Decision
    item: PlanItem | None
    notice: Verdict | None = None  # with a notices: section, what the notice rules say of it

    @property
    def action(self) -> str | None:
        """The value of the entry's plan item, if it has one."""
        return None if self.item is None else self.item.action.value


class Assessor:
    """The policy fixed at one instant: ``assessor(entry)`` classifies the entry, decides what
    the policy wants and finds the item between them, for a whole catalogue without re-reading
    the policy per entry."""

    __slots__ = ("placeholder_size", "_decide", "_timing", "_now")

    def __init__(self, policy: Policy, now: int, placeholder_size: int | None = None, *,
                 notice_now: int | None = None) -> None:
        self.placeholder_size = placeholder_size
        self._decide = Decider(policy, now)
        notices = policy.notices
        self._timing = None if notices is None else Timing(notices.before, notices.remind)
        # The notice rules' instant: Kaltura's clock when the observation read it.
        self._now = now if notice_now is None else notice_now

    def __call__(self, entry: ObservedEntry) -> Assessment:
        observation = classify(entry, self.placeholder_size)
        decision = self._decide(entry)
        item = _item(entry, observation, decision)
        if self._timing is None:
            return Assessment(entry, observation, decision, item)
        verdict = judge(entry.entry_id, _subject(entry, item), entry.notices, self._timing,
                        self._now)
        return Assessment(entry, observation, decision, _held(item, verdict), verdict)


def consequence_of(item: PlanItem) -> Consequence | None:
    """What an item does to the entry's content that its owner must hear of first (None: it
    keeps the content — archive, thaw, restore, repair ...)."""
    if item.action is Action.REPLACE:
        return Consequence.SWAP
    if item.action is Action.DELETE:
        return Consequence.PURGE
    return None


def _subject(entry: ObservedEntry, item: PlanItem | None) -> Subject | None:
    """The entry as its owner's notice describes it, when its item swaps or purges it."""
    consequence = None if item is None else consequence_of(item)
    if item is None or consequence is None:
        return None
    size = entry.original.size_bytes if entry.original is not None else entry.stored_bytes
    return Subject(entry.entry_id, entry.user_id or entry.creator_id, consequence, item.rule,
                   entry.name, size, entry.last_played_at)


def _held(item: PlanItem | None, verdict: Verdict | None) -> PlanItem | None:
    """The item the notice rules let through: unchanged when due (or not a swap or purge);
    else the archive alone where the replace must archive first (content kept needs no
    notice), or a ``hold`` item that says until when and why."""
    if item is None or verdict is None or verdict.subject is None or verdict.allows_change:
        return item
    why = held_reason(verdict, verdict.subject.consequence)
    if item.action is Action.REPLACE and Action.ARCHIVE.value in item.reconcilers:
        return replace(item, action=Action.ARCHIVE, reconcilers=ARCHIVE,
                       reason=f"{item.reason.removesuffix(ARCHIVE_THEN)}; archive; {why}",
                       notice=verdict.status.value, due_at=verdict.due_at)
    return replace(item, action=Action.HOLD, reconcilers=(), bytes=0, reason=why,
                   notice=verdict.status.value, due_at=verdict.due_at)


@runtime_checkable
class CountedItems(Protocol):
    """A plan's items that count themselves per action without a walk (a store on disk)."""

    def count_of(self, action: Action) -> int: ...


class ItemStore(Protocol):
    """Where :class:`PlanBuilder` puts its items: :meth:`sealed` gives them in plan order."""

    def add(self, item: PlanItem) -> None: ...

    def sealed(self) -> Sequence[PlanItem]: ...


class ListItems:
    """The pure item store: a list, sorted when sealed."""

    def __init__(self) -> None:
        self._items: list[PlanItem] = []

    def add(self, item: PlanItem) -> None:
        self._items.append(item)

    def sealed(self) -> Sequence[PlanItem]:
        return tuple(sorted(self._items, key=plan_order))


def plan_order(item: PlanItem) -> tuple[int, str]:
    """An item's place in a plan: by action (ACTION_ORDER), then by entry id."""
    return _RANK[item.action], item.entry_id


_RANK = {action: index for index, action in enumerate(ACTION_ORDER)}


class PlanBuilder:
    """The diff in pieces: :meth:`add` one assessment at a time (a page of entries at a time,
    in any order), :meth:`plan` at the end. Only the items (in ``store``: a list by default,
    on disk past a few thousand in the pipeline) and the counts are kept, never the entries."""

    __slots__ = ("policy", "now", "_items", "_tally", "_notices")

    def __init__(self, policy: Policy, now: int, store: ItemStore | None = None) -> None:
        self.policy = policy
        self.now = now
        self._items: ItemStore = store if store is not None else ListItems()
        self._tally = Tally()
        self._notices: list[Verdict] = []

    def add(self, assessment: Assessment) -> None:
        notice = assessment.notice
        self._tally.add(assessment.entry, assessment.observation, assessment.decision,
                        assessment.action, None if notice is None else notice.status.value)
        if assessment.item is not None:
            self._items.add(assessment.item)
        if notice is not None and (notice.needs_message or notice.drop):
            self._notices.append(notice)

    def plan(self) -> Plan:
        census = self._tally.census()
        notices = tuple(sorted(self._notices, key=lambda v: v.entry_id))
        return Plan(self._items.sealed(), self.now, census.entries, Target.of(self.policy), census,
                    CycleLimits.of(self.policy.limits), notices)


def diff(
    entries: Iterable[ObservedEntry],
    policy: Policy,
    now: int,
    placeholder_size: int | None = None,
) -> Plan:
    """The plan that takes every entry from its observed state to its desired one, with the
    census of everything observed: the pure function ``(desired, observed) → Plan``."""
    assess = Assessor(policy, now, placeholder_size)
    builder = PlanBuilder(policy, now)
    for entry in entries:
        builder.add(assess(entry))
    return builder.plan()


def plan_entry(
    entry: ObservedEntry, policy: Policy, now: int, placeholder_size: int | None = None
) -> PlanItem | None:
    """The item for one entry, or ``None`` when it is where the policy wants it."""
    return Assessor(policy, now, placeholder_size)(entry).item


def _item(entry: ObservedEntry, observation: Observation, decision: Decision) -> PlanItem | None:
    """The item between what the entry is and what the policy wants (if any)."""
    found = _transition(entry, observation, decision)
    if found is None:
        return None
    action, reconcilers, size, reason = found
    repair = observation.repair if action is Action.REPAIR else None
    return PlanItem(
        entry_id=entry.entry_id,
        action=action,
        from_state=observation.state,
        to_state=decision.state,
        reconcilers=reconcilers,
        rule=decision.rule,
        bytes=size,
        reason=reason,
        fingerprint=fingerprint(entry),
        add_tags=tuple(sorted(repair.add)) if repair else (),
        remove_tags=tuple(sorted(repair.remove)) if repair else (),
    )


_Found = tuple[Action, tuple[str, ...], int, str]


def _transition(entry: ObservedEntry, obs: Observation, decision: Decision) -> _Found | None:  # noqa: C901 — design.md's transition ladder, read top to bottom
    """The early-return ladder from (observed, desired) to an action."""
    state, want = obs.state, decision.state
    original_size = entry.original.size_bytes if entry.original is not None else 0
    copy_size = entry.archive.size_bytes if entry.archive is not None else 0
    # Emptied, with a copy to bring it back from: recovered when the policy manages it.
    if obs.recoverable and decision.managed and want is not DesiredState.DELETED:
        return _recover(entry, copy_size)
    # Broken invariants are reported where karchive manages or has touched the entry.
    if state is ObservedState.UNHEALTHY:
        touched = bool({TAG_ARCHIVED, TAG_REPLACED} & entry.tags) or entry.archive is not None
        return (Action.UNHEALTHY, (), 0, obs.reason) if decision.managed or touched else None
    # Unmanaged: observe only, even a placeholder stays as it is.
    if not decision.managed:
        return None
    # Kaltura is converting a replacement of ours: let it finish.
    if state is ObservedState.RESTORING:
        return Action.WAIT, (), 0, f"{obs.reason}: {WAIT_KALTURA}"
    # A pending tag fix comes first: the other transitions start from truthful tags.
    # (A stale archived_to_s3 tag needs no fix of its own: the archive below re-tags.)
    if obs.repair is not None and not (state is ObservedState.ORIGINAL and not obs.archive_current):
        return Action.REPAIR, REPAIR, 0, obs.repair.reason
    if want is DesiredState.DELETED:
        return _to_deleted(obs, original_size)
    if state is ObservedState.ORIGINAL:
        # A copy the old tool left is verified first by the archive reconciler (its ETag
        # recomputed from a download of the original): proven, it is adopted with no upload;
        # else archived again beside it.
        if want is DesiredState.ARCHIVED:
            return Action.ARCHIVE, ARCHIVE, original_size, obs.reason
        # To placeholder: archive then replace in one item, counted as a replace.
        return (Action.REPLACE, ARCHIVE_THEN_REPLACE, original_size,
                f"{obs.reason}{ARCHIVE_THEN}")
    if state is ObservedState.ARCHIVED:
        if want is DesiredState.PLACEHOLDER and obs.archive_current:
            return Action.REPLACE, REPLACE, 0, "archived; replace with the placeholder"
        return None
    # Placeholder.
    if want is DesiredState.PLACEHOLDER:
        return None
    return _to_archived_from_placeholder(entry, copy_size, decision)


def _to_archived_from_placeholder(
    entry: ObservedEntry, copy_size: int, decision: Decision
) -> _Found | None:
    why = "played since replaced" if decision.rule == RESTORE_ON_PLAY else "policy wants it back"
    return _from_copy(entry, copy_size, why, Action.RESTORE, RESTORE,
                      "restore from the archive copy")


def _recover(entry: ObservedEntry, copy_size: int) -> _Found:
    return _from_copy(entry, copy_size, EMPTIED, Action.RECOVER, RECOVER,
                      "recover it from the archive copy")


def _from_copy(entry: ObservedEntry, copy_size: int, why: str, action: Action,
               reconcilers: tuple[str, ...], what: str) -> _Found:
    """Content brought back from the copy (restore, recover): thawed first when it must be."""
    assert entry.archive is not None  # a placeholder or an emptied entry has its copy
    restore = entry.archive.restore
    # A frozen copy must be thawed before anything can read it.
    if restore is RestoreStatus.FROZEN:
        return Action.THAW, THAW, copy_size, f"{why}; thaw the archive copy"
    # The thaw was requested: S3 takes hours; report, do nothing.
    if restore is RestoreStatus.THAWING:
        return Action.WAIT, (), 0, f"{why}; {WAIT_THAW}"
    # Readable (a warm class, or thawed): bring the content back.
    return action, reconcilers, copy_size, f"{why}; {what}"


def _to_deleted(obs: Observation, original_size: int) -> _Found | None:
    # Everything is archived (and verified) before the entry is deleted.
    if obs.state is ObservedState.ORIGINAL:
        return (Action.DELETE, DELETE, original_size, f"{obs.reason}; archive, then delete")
    return Action.DELETE, DELETE, 0, f"{obs.state.value}; verify the archive, then delete"


def stale_items(saved: Plan, fresh: Plan) -> tuple[PlanItem, ...]:
    """The executable items of ``saved`` that ``fresh`` (planned from a new observation) does
    not repeat with the same action and fingerprint: their entries changed, so applying them
    would act on facts that are no longer true."""
    current = {(item.entry_id, item.action): item.fingerprint for item in fresh.changes}
    return tuple(
        item for item in saved.changes
        if current.get((item.entry_id, item.action)) != item.fingerprint
    )
