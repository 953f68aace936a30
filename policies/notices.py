"""The notice core: which entries' owners must be told, which wait out their grace period, which
may be swapped or purged now — and one message per owner.

A pure step of the core, inside the diff: the plan says what it would do to each entry
(``policies.plan.consequence_of`` its item: a content swap or a purge; archiving alone keeps the
content and needs no notice), the observation says who owns it and when it was last played, and the
record of notices (zero-byte markers in the archive, ``policies.layout``) says when its owner was
told. :func:`judge` (one entry, as the diff meets it) and :func:`assess` (many) turn those into
one :class:`Verdict` per entry (early-return ladder, one
comment per branch), and :func:`letters` groups the entries that need a message by owner. The
runtime (``controller/runtime/notices.py``) sends the letters and records what was accepted; the
diff lets a swap or purge run only for a ``DUE`` verdict (design.md invariant 7).

What a notice announced is bound by a digest of (entry, consequence, owner): a purge where a swap
was announced, or a new owner, is a new notice. The record keeps the date the owner was given, so
a shorter ``before`` in a later policy never brings a swap forward of what the owner was told.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from policies.durations import Duration
from policies.observed import NoticeMark


class Consequence(StrEnum):
    """What the plan would do to an entry's content that its owner must hear of first."""

    SWAP = "swap"  # the content becomes the placeholder video (the copy stays in the archive)
    PURGE = "purge"  # the entry is deleted from Kaltura (archived completely first)


@dataclass(frozen=True, slots=True)
class Subject:
    """An entry the plan would swap or purge, with what its owner's message says of it."""

    entry_id: str
    owner: str  # the entry's Kaltura userId
    consequence: Consequence
    rule: str
    name: str = ""
    size_bytes: int = 0
    last_played_at: int | None = None

    @property
    def digest(self) -> str:
        return announced_digest(self.entry_id, self.consequence, self.owner)


def announced_digest(entry_id: str, consequence: Consequence, owner: str) -> str:
    """12 hex digits naming what a notice announced: this entry, this consequence, this owner."""
    text = f"{entry_id}\n{consequence.value}\n{owner}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class Status(StrEnum):
    NOTICE = "notice"  # selected, never told (or told of something else): send the first notice
    REMIND = "remind"  # told, in the grace period, and a reminder falls due now
    GRACE = "grace"  # told; the swap or purge waits until ``due_at``
    DUE = "due"  # told long enough ago: the swap or purge may run
    CANCELLED = "cancelled"  # a record but nothing to announce any more: drop the record


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the notice rules say of one entry. ``drop``: markers that no longer hold, to delete
    (a cancelled record, or one of an earlier announcement)."""

    entry_id: str
    status: Status
    reason: str
    subject: Subject | None = None
    # When the swap or purge may run; NOTICE: the date a notice sent now announces.
    due_at: int | None = None
    told_at: int | None = None  # when the owner was first told (the record's start)
    drop: tuple[NoticeMark, ...] = ()

    @property
    def allows_change(self) -> bool:
        """Whether the swap or purge may run now (invariant 7)."""
        return self.status is Status.DUE

    @property
    def needs_message(self) -> bool:
        return self.status in (Status.NOTICE, Status.REMIND)


@dataclass(frozen=True, slots=True)
class Timing:
    """The policy's grace period and reminders (``notices.before``, ``notices.remind``)."""

    before: Duration
    remind: tuple[Duration, ...] = ()


def after(span: Duration, instant: int) -> int:
    """The instant ``span`` after ``instant``, calendar-aware like :meth:`Duration.before`
    (a negative span before is the same span after: "1mo after 31 Jan" clamps to February)."""
    return Duration(-span.count, span.unit).before(instant)


def assess(subjects: Iterable[Subject], marks: Mapping[str, Sequence[NoticeMark]],
           timing: Timing, now: int) -> list[Verdict]:
    """A verdict for every subject, and a CANCELLED one for every recorded entry that is no
    longer a subject (the plan no longer swaps or purges it: exempt, kept, played, deselected,
    or already done). ``marks`` must cover exactly the entries this observation saw: a record
    of an entry outside it (another shard, a filtered run) would read as cancelled."""
    verdicts: list[Verdict] = []
    seen: set[str] = set()
    for subject in subjects:
        seen.add(subject.entry_id)
        verdicts.append(_judge(subject, tuple(marks.get(subject.entry_id, ())), timing, now))
    for entry_id, recorded in marks.items():
        if entry_id not in seen and recorded:
            verdicts.append(_cancelled(entry_id, recorded))
    return verdicts


def judge(entry_id: str, subject: Subject | None, recorded: Sequence[NoticeMark],
          timing: Timing, now: int) -> Verdict | None:
    """One entry's verdict, as the diff meets it: ``subject`` None when the plan keeps its
    content (then CANCELLED if a record remains, else nothing to say)."""
    if subject is None:
        return _cancelled(entry_id, recorded) if recorded else None
    return _judge(subject, tuple(recorded), timing, now)


def _cancelled(entry_id: str, recorded: Sequence[NoticeMark]) -> Verdict:
    return Verdict(entry_id, Status.CANCELLED, "no longer selected for a swap or purge",
                   drop=tuple(recorded))


def _judge(subject: Subject, recorded: tuple[NoticeMark, ...], timing: Timing,
           now: int) -> Verdict:
    """The early-return ladder for one entry the plan would swap or purge."""
    current = tuple(m for m in recorded if m.digest == subject.digest)
    stale = tuple(m for m in recorded if m.digest != subject.digest)
    # Never told, or told of another consequence or by another owner: a new notice.
    if not current:
        why = "told of another change" if stale else "not told yet"
        return Verdict(subject.entry_id, Status.NOTICE, why, subject,
                       due_at=after(timing.before, now), drop=stale)
    first = min(current, key=lambda m: m.sent_at)
    # Played after the owner was told: someone wants it; the countdown starts again.
    if subject.last_played_at is not None and subject.last_played_at > first.sent_at:
        return Verdict(subject.entry_id, Status.NOTICE, "played since the notice", subject,
                       due_at=after(timing.before, now), drop=recorded)
    # Never sooner than the policy's period, nor than the date the owner was given.
    due = max(after(timing.before, first.sent_at), first.due_at)
    if now >= due:
        return Verdict(subject.entry_id, Status.DUE, "the grace period is over", subject,
                       due_at=due, told_at=first.sent_at, drop=stale)
    # In the grace period: a reminder whose moment has come and that no message covers yet.
    moments = [Duration(r.count, r.unit).before(due) for r in timing.remind]
    passed = [moment for moment in moments if moment <= now]
    latest = max(passed) if passed else None
    if latest is not None and not any(m.sent_at >= latest for m in current):
        return Verdict(subject.entry_id, Status.REMIND, "a reminder is due", subject,
                       due_at=due, told_at=first.sent_at, drop=stale)
    return Verdict(subject.entry_id, Status.GRACE, "waiting out the grace period", subject,
                   due_at=due, told_at=first.sent_at, drop=stale)


# -- one message per owner ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contact:
    """Where an owner is told: a mail address (and the name the message greets)."""

    address: str
    name: str = ""


class Unreachable(StrEnum):
    NO_ADDRESS = "no address"  # Kaltura or the directory has no address for the owner
    BOUNCED = "address refused"  # the SMTP server refused the address


@dataclass(frozen=True, slots=True)
class Letter:
    """One owner's message this cycle: every entry of theirs that needs a notice or a reminder.
    ``notice_id`` is the same for the same owner, entries and announcements, so a copy sent
    again after a crash between acceptance and record is recognisable as the same notice."""

    owner: str
    contact: Contact
    verdicts: tuple[Verdict, ...]
    due_at: dict[str, int]  # entry id -> the date this message announces

    @property
    def reminder(self) -> bool:
        """Only reminders (no entry is told for the first time)."""
        return all(v.status is Status.REMIND for v in self.verdicts)

    @property
    def notice_id(self) -> str:
        parts = [self.owner, *sorted(f"{v.entry_id}:{_digest(v)}:{v.status.value}"
                                     for v in self.verdicts)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]

    def marks(self, sent_at: int) -> tuple[NoticeMark, ...]:
        """The markers that record this letter once the SMTP server accepted it at ``sent_at``."""
        return tuple(NoticeMark(v.entry_id, sent_at, self.due_at[v.entry_id], _digest(v))
                     for v in self.verdicts)


@dataclass(frozen=True, slots=True)
class Held:
    """An owner who cannot be told: their entries needing a first notice are not swapped or
    purged (reported); a reminder that cannot go out holds nothing (they were told)."""

    owner: str
    reason: Unreachable
    entry_ids: tuple[str, ...]  # every entry the message would have listed
    holding: tuple[str, ...]  # those whose swap or purge waits (never told)


def _digest(verdict: Verdict) -> str:
    assert verdict.subject is not None  # only NOTICE / REMIND verdicts are in letters
    return verdict.subject.digest


def letters(verdicts: Iterable[Verdict], contact_of: Callable[[str], Contact | None],
            timing: Timing, now: int, bounced: frozenset[str] = frozenset()
            ) -> tuple[list[Letter], list[Held]]:
    """The messages this cycle sends (one per owner, entries in id order) and the owners who
    cannot be reached. A first notice announces ``before`` from ``now``; a reminder repeats the
    date already given. ``bounced``: addresses the SMTP server refused (kept by the runtime)."""
    sent: list[Letter] = []
    held: list[Held] = []
    for owner, group in by_owner(verdicts).items():
        contact = contact_of(owner) if owner else None
        address = contact.address.strip() if contact is not None else ""
        if contact is None or not address or address.lower() in bounced:
            reason = Unreachable.BOUNCED if address else Unreachable.NO_ADDRESS
            never_told = tuple(v.entry_id for v in group if v.status is Status.NOTICE)
            held.append(Held(owner, reason, tuple(v.entry_id for v in group), never_told))
            continue
        # A first notice announces ``before`` from the moment it is sent (the plan's date was
        # only a forecast); a reminder repeats the date the owner was given.
        dates = {v.entry_id: v.due_at if v.status is Status.REMIND and v.due_at is not None
                 else after(timing.before, now) for v in group}
        sent.append(Letter(owner, contact, tuple(group), dates))
    return sent, held


# -- what the plan shows and saves of the notices ----------------------------------------------


def _date(instant: int | None) -> str:
    return "—" if instant is None else datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%d")


_VERB = {Consequence.SWAP: "replace", Consequence.PURGE: "delete"}


def notify_lines(verdicts: Iterable[Verdict]) -> list[str]:
    """The plan's ``✉ notify`` lines: one per owner to tell this cycle, then one per entry of
    theirs with what will happen and from which date (a first notice's date counts from now)."""
    lines: list[str] = []
    for owner, group in by_owner(verdicts).items():
        kind = "reminder" if all(v.status is Status.REMIND for v in group) else "notice"
        lines.append(f"✉ notify {owner or '(no owner)'}: {kind} of {len(group)} "
                     f"entr{'y' if len(group) == 1 else 'ies'}")
        for verdict in group:
            assert verdict.subject is not None
            lines.append(f"    {verdict.entry_id} {_VERB[verdict.subject.consequence]} "
                         f"due {_date(verdict.due_at)} ({verdict.reason})")
    return lines


def by_owner(verdicts: Iterable[Verdict]) -> dict[str, list[Verdict]]:
    """The verdicts that need a message, by owner (owners and entries in order)."""
    found: dict[str, list[Verdict]] = {}
    for verdict in verdicts:
        if verdict.needs_message and verdict.subject is not None:
            found.setdefault(verdict.subject.owner, []).append(verdict)
    return {owner: sorted(found[owner], key=lambda v: v.entry_id) for owner in sorted(found)}


def held_reason(verdict: Verdict, consequence: Consequence) -> str:
    """Why a swap or purge waits, one line for the plan (``⏸ hold`` and held archives)."""
    verb = _VERB[consequence]
    if verdict.status is Status.NOTICE:
        return f"{verb} waits for its owner's notice ({verdict.reason})"
    return f"{verb} due {_date(verdict.due_at)}: its owner was told {_date(verdict.told_at)}"


def verdict_to_json(verdict: Verdict) -> dict[str, Any]:
    """A notice to send, as the plan file records it (the markers to drop are not saved: the
    run that applies the plan observes them again)."""
    subject = verdict.subject
    assert subject is not None
    return {"entry_id": verdict.entry_id, "status": verdict.status.value,
            "reason": verdict.reason, "owner": subject.owner,
            "consequence": subject.consequence.value, "rule": subject.rule,
            "name": subject.name, "size_bytes": subject.size_bytes,
            "last_played_at": subject.last_played_at, "due_at": verdict.due_at,
            "told_at": verdict.told_at}


def verdict_from_json(raw: Mapping[str, Any]) -> Verdict:
    """The inverse of :func:`verdict_to_json`; KeyError, ValueError or TypeError if damaged."""
    if set(raw) != _VERDICT_KEYS:
        raise ValueError(f"a notice has keys {sorted(raw)}, expected {sorted(_VERDICT_KEYS)}")
    status = Status(str(raw["status"]))
    if status not in (Status.NOTICE, Status.REMIND):
        raise ValueError(f"a notice to send cannot be {status.value!r}")
    subject = Subject(str(raw["entry_id"]), str(raw["owner"]), Consequence(str(raw["consequence"])),
                      str(raw["rule"]), str(raw["name"]), _whole(raw["size_bytes"]),
                      _optional(raw["last_played_at"]))
    return Verdict(subject.entry_id, status, str(raw["reason"]), subject,
                   _optional(raw["due_at"]), _optional(raw["told_at"]))


_VERDICT_KEYS = frozenset({"entry_id", "status", "reason", "owner", "consequence", "rule", "name",
                           "size_bytes", "last_played_at", "due_at", "told_at"})


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {value!r}")
    return value


def _optional(value: Any) -> int | None:
    return None if value is None else _whole(value)
