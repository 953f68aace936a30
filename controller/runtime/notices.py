"""Owner notices in the cycle: the record of notices in the archive, and the sending step.

Where it sits: after the diff, before the executor. The pure core (``policies.notices``) says per
entry whether its owner must be told, is waiting out the grace period, or may be changed; this
module does the I/O around it — reads and writes the record (:class:`NoticeStore`, on the
archive port, so an S3 bucket and a directory archive both hold it), looks owners' addresses up
(``controller/adapters/addresses.py``), renders (``policies.messages``) and sends
(``controller/adapters/smtp.py``) one message per owner, and records each one the server
accepted (:func:`send_notices`).

The record, in the archive beside the entries' copies (``policies.layout``)::

    {prefix}{entry_id}/notice/{sent}-{due}.{digest}   zero bytes, one per accepted message
                                                      about the entry (first notice, reminders)
    {prefix}notices/YYYY/MM/DD/{sent}-{notice_id}.json  the message, for people and audits:
                                                      owner, address, entries, dates, Message-ID,
                                                      the server's reply
    {prefix}keep/{nonce}.json                         a keep link's grant (policies.keeplink),
                                                      written before its message is sent
    {prefix}keep/{nonce}.used                         written once the link was used

The markers are names, so the observation's bucket listing — O(N/1000) calls, no GET per entry —
reads every notice (``policies.layout.Marks.notices``); :meth:`NoticeStore.load` reads them
with a listing of its own where no observation is at hand. At-least-once: the markers (and the
JSON) are written only after the server accepted the message, so a crash in between sends the
notice again next cycle (same ``X-Karchive-Notice`` header), and never leaves an entry counted
as told when its owner was not. A cancelled record (the entry played, exempted, kept, no longer
selected, or already changed) is deleted; the JSON stays as the audit trail.

How the pipeline uses them:

- observe (``runtime/observe.py``): the inventory's listing hands every entry's ``notice``
  markers to its :class:`~policies.observed.ObservedEntry` (``notices``), no extra call; with a
  ``notices:`` section the observation also reads Kaltura's clock once (``system.getTime``),
  the instant the notice rules judge at.
- diff (``policies/plan.py``): each swap or purge is judged by ``policies.notices.judge``; one
  not due becomes a ``hold`` item (or, where the replace must archive first, the archive
  alone), and the verdicts to act on — messages to send, records to drop — ride on the plan
  (``Plan.notices``: the ``✉ notify`` lines). ``plan`` prints them and writes nothing.
- apply and the daemon's cycle (not plan-only, paused or standby): :func:`notify` before the
  executor — the mailer and the address book from the composition root, the store over the
  archive port, the record's clock Kaltura's — and each owner's outcome counted
  (``karchive_notices_sent_total``, ``karchive_notices_failed_total{reason}``). A bounced or
  unknown address is asked again every cycle: its entries stay held until it is fixed.
- ``karchive run --keep-address``: ``runtime/keep.py``'s listener over the same store and the
  Kaltura writer.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from enum import StrEnum

from controller.adapters.addresses import AddressBook
from controller.adapters.kaltura.read import server_time
from controller.adapters.kaltura.write import KalturaWriter
from controller.adapters.smtp import Mailer, RecipientRefused, Sent
from controller.compose import Adapters
from controller.errors import KarchiveError, NetworkError, NotFound, TransientError
from controller.runtime.executor import RunReport
from policies import keeplink
from policies.desired import RESTORE_ON_PLAY
from policies.keeplink import Grant
from policies.layout import Marks, notice_key, parse_key
from policies.messages import Back, Keep, Setting, render, render_back
from policies.notice_settings import NoticesSettings
from policies.notices import Letter, Status, Timing, Unreachable, Verdict, after, letters
from policies.observed import NoticeMark
from policies.plan import Action, Plan
from reconcilers.base import Needs
from reconcilers.ports import ArchivePort

log = logging.getLogger("karchive.notices")

# What the notices call (controller/runtime/permissions.py adds it to karchive's needs): Kaltura's
# clock and its users' addresses, and, for the keep links, the entry and its tags; the record and
# the grants in the archive.
NEEDS = Needs(kaltura=frozenset({"system.gettime", "user.list", "media.get", "media.update"}),
              s3=frozenset({"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"}))
NOTICE_LOG = "notices/"
KEEP_FOLDER = "keep/"
_USED = b"used\n"


def timing(settings: NoticesSettings) -> Timing:
    return Timing(settings.before, settings.remind)


class NoticeStore:
    """The record of notices and keep grants, on an archive port, under the policy's prefix."""

    def __init__(self, archive: ArchivePort, prefix: str) -> None:
        self.archive = archive
        self.prefix = prefix

    # -- notices -------------------------------------------------------------------------------

    def load(self) -> dict[str, list[NoticeMark]]:
        """Every entry's notice markers, from one listing of the prefix."""
        marks = Marks()
        for key in self.archive.list_keys(self.prefix):
            parsed = parse_key(key, self.prefix)
            if parsed is not None:
                marks.add(parsed)
        return marks.notices

    def record(self, letter: Letter, sent_at: int, message: EmailMessage,
               sent: Sent) -> tuple[NoticeMark, ...]:
        """Record what the server accepted: the audit JSON first, then the markers (the record
        the plan reads), so a message with markers always has its JSON."""
        marks = letter.marks(sent_at)
        day = datetime.fromtimestamp(sent_at, UTC).strftime("%Y/%m/%d")
        audit = {
            "notice_id": letter.notice_id, "message_id": str(message["Message-ID"]),
            "owner": letter.owner, "address": letter.contact.address,
            "copy_to": str(message["Cc"] or "") or None, "sent_at": sent_at,
            "reminder": letter.reminder, "server_reply": sent.reply,
            "copy_refused": sent.copy_refused,
            "entries": [{"entry_id": m.entry_id, "due_at": m.due_at, "digest": m.digest,
                         "status": v.status.value,
                         "consequence": v.subject.consequence.value if v.subject else None}
                        for m, v in zip(marks, letter.verdicts, strict=True)],
        }
        self.archive.put_bytes(
            f"{self.prefix}{NOTICE_LOG}{day}/{sent_at}-{letter.notice_id}.json",
            json.dumps(audit, indent=1, ensure_ascii=False).encode(),
            content_type="application/json")
        for mark in marks:
            self.archive.put_bytes(notice_key(self.prefix, mark), b"",
                                   content_type="application/octet-stream")
        return marks

    def drop(self, marks: Iterable[NoticeMark]) -> int:
        """Delete markers that no longer hold; how many were deleted (absent ones count too)."""
        count = 0
        for mark in marks:
            self.archive.delete(notice_key(self.prefix, mark))
            count += 1
        return count

    # -- keep grants ---------------------------------------------------------------------------

    def _grant_key(self, nonce: str, suffix: str) -> str:
        return f"{self.prefix}{KEEP_FOLDER}{nonce}.{suffix}"

    def save_grant(self, grant: Grant) -> None:
        self.archive.put_bytes(self._grant_key(grant.nonce, "json"), grant.to_json(),
                               content_type="application/json")

    def grant(self, nonce: str) -> Grant | None:
        try:
            return Grant.from_json(self.archive.get_bytes(self._grant_key(nonce, "json")))
        except NotFound:
            return None

    def used(self, nonce: str) -> bool:
        return self.archive.head(self._grant_key(nonce, "used")) is not None

    def claim(self, nonce: str) -> bool:
        """Record the grant as used, write-once; False when someone used it first."""
        result = self.archive.upload_stream(self._grant_key(nonce, "used"), io.BytesIO(_USED),
                                            len(_USED), metadata={}, storage_class="STANDARD")
        return result.written_by_us


class Outcome(StrEnum):
    SENT = "sent"
    BOUNCED = "bounced"  # the server refused the owner's address: entries held
    NO_ADDRESS = "no_address"  # Kaltura or the directory has none: entries held
    FAILED = "failed"  # the server, the address source or the archive failed: try next cycle


@dataclass(frozen=True, slots=True)
class OwnerResult:
    """What happened to one owner's message this cycle."""

    owner: str
    outcome: Outcome
    entry_ids: tuple[str, ...]
    holding: tuple[str, ...] = ()  # entries whose swap or purge waits because of it
    detail: str = ""  # one line: the server's answer, or the failure


@dataclass(frozen=True, slots=True)
class CycleReport:
    """The sending step's result: one row per owner that needed a message, and upkeep."""

    owners: tuple[OwnerResult, ...] = ()
    dropped: int = 0  # markers deleted (cancelled or superseded notices)
    errors: tuple[str, ...] = field(default=())  # upkeep failures (one line each)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for row in self.owners if row.outcome is outcome)

    def lines(self) -> list[str]:
        """For people (apply's output, the daemon's log): one line per owner, then upkeep."""
        lines = []
        for row in self.owners:
            listed = f"{len(row.entry_ids)} entr{'y' if len(row.entry_ids) == 1 else 'ies'}"
            if row.outcome is Outcome.SENT:
                lines.append(f"✉ notice sent to {row.owner or '(no owner)'} ({listed})")
                continue
            held = f"; {len(row.holding)} held until their owner is told" if row.holding else ""
            why = row.outcome.value.replace("_", " ")
            why = why if row.detail in ("", why) else f"{why}: {row.detail}"
            lines.append(f"✉ notice NOT sent to {row.owner or '(no owner)'} ({listed}): "
                         f"{why}{held}")
        if self.dropped:
            lines.append(f"✉ {self.dropped} notice record(s) dropped (cancelled or superseded)")
        lines += [f"✉ {error}" for error in self.errors]
        return lines


@dataclass(frozen=True, slots=True)
class Sending:
    """Everything the sending step uses, built by the composition root for one cycle."""

    settings: NoticesSettings
    partner_id: int
    restore_on_play: bool
    store: NoticeStore
    mailer: Mailer
    book: AddressBook
    clock: Callable[[], float] = time.time
    random: Callable[[int], bytes] = os.urandom


def notify(plan: Plan, adapters: Adapters,
           clock: Callable[[], float] | None = None) -> CycleReport:
    """The plan's notices through the policy's mail server: the records that no longer hold
    dropped, one message per owner sent and recorded once accepted; every owner's outcome
    counted (``karchive_notices_sent_total``, ``karchive_notices_failed_total{reason}``).
    ``clock``: the record's clock, Kaltura's by default (one ``system.getTime``, as the plan's
    verdicts were judged on it)."""
    settings = adapters.policy.notices
    if settings is None or not plan.notices:
        return CycleReport()
    policy = adapters.policy
    if clock is None:
        offset = server_time(adapters.kaltura) - time.time()
        clock = lambda: time.time() + offset  # noqa: E731 — Kaltura's clock, read once
    store = NoticeStore(adapters.store.archive(), policy.storage.prefix)
    with adapters.mailer() as mailer:
        sending = Sending(settings, policy.kaltura.partner_id, policy.restore_on_play, store,
                          mailer, adapters.address_book(), clock=clock)
        report = send_notices(plan.notices, sending, int(clock()))
    for row in report.owners:
        adapters.metrics.notice(row.outcome.value)
    return report


def tell_restored(plan: Plan, report: RunReport, adapters: Adapters) -> list[str]:
    """With ``notices.tell_restored``: one "your videos are back" message per owner whose
    played placeholders this run restored. Best effort and told once (at most once: a failure
    is a line for the log, never a retry); the lines say what happened."""
    settings = adapters.policy.notices
    played = {i.entry_id for i in plan.changes
              if i.action is Action.RESTORE and i.rule == RESTORE_ON_PLAY}
    back = [i.entry_id for i in report.items if i.entry_id in played and i.result == "done"]
    if settings is None or not settings.tell_restored or not back:
        return []
    try:
        by_owner = _owners_of(back, KalturaWriter(adapters.kaltura))
        contacts = adapters.address_book().contacts(sorted(by_owner))
    except KarchiveError as exc:
        return [f"✉ owners of restored videos not told: {exc}"]
    policy = adapters.policy
    setting = Setting(policy.kaltura.partner_id, policy.restore_on_play, int(time.time()))
    lines = []
    with adapters.mailer() as mailer:
        for owner, entries in sorted(by_owner.items()):
            contact = contacts.get(owner)
            if contact is None or not contact.address:
                lines.append(f"✉ {owner or '(no owner)'} not told their videos are back: "
                             "no address")
                continue
            try:
                message = render_back(Back(owner, contact, tuple(entries)), settings, setting)
                mailer.send(message, contact.address, settings.copy_to)
            except (KarchiveError, ValueError) as exc:
                lines.append(f"✉ {owner} not told their videos are back: {exc}")
                continue
            lines.append(f"✉ told {owner} that {len(entries)} of their videos are back")
    return lines


def _owners_of(entry_ids: Iterable[str], kaltura: KalturaWriter
               ) -> dict[str, list[tuple[str, str]]]:
    """The owner of each entry as Kaltura says now, and the entries' names, by owner."""
    found: dict[str, list[tuple[str, str]]] = {}
    for entry_id in entry_ids:
        details = kaltura.entry(entry_id)
        found.setdefault(details.user_id or details.creator_id, []).append(
            (entry_id, details.name))
    return found


def send_notices(verdicts: Sequence[Verdict], sending: Sending, now: int,
                 bounced: frozenset[str] = frozenset()) -> CycleReport:
    """Drop the records that no longer hold, then send this cycle's letters and record each one
    the server accepted. Never raises for one owner's failure: every owner gets a row."""
    dropped, errors = _upkeep(verdicts, sending.store)
    wanted = sorted({v.subject.owner for v in verdicts if v.needs_message and v.subject})
    if not wanted:
        return CycleReport((), dropped, errors)
    try:
        contacts = sending.book.contacts(wanted)
    except KarchiveError as exc:
        # "Could not ask" is not "no address": hold everyone this cycle and say why.
        failed = _unsent(verdicts, wanted, f"owner addresses unavailable: {exc}")
        return CycleReport(tuple(failed), dropped, errors)
    outgoing, held = letters(verdicts, contacts.get, timing(sending.settings), now, bounced)
    rows = [OwnerResult(h.owner, Outcome.BOUNCED if h.reason is Unreachable.BOUNCED
                        else Outcome.NO_ADDRESS, h.entry_ids, h.holding, h.reason.value)
            for h in held]
    for index, letter in enumerate(outgoing):
        row = _send_one(letter, sending, now)
        rows.append(row)
        if row.outcome is Outcome.FAILED and row.detail.startswith(_STOP):
            # The server is down or refuses us: the others would fail the same way, slowly.
            rows += [_failed(later, "not tried: " + row.detail) for later in outgoing[index + 1:]]
            break
    return CycleReport(tuple(sorted(rows, key=lambda r: r.owner)), dropped, errors)


_STOP = "stopped: "


def _upkeep(verdicts: Sequence[Verdict], store: NoticeStore) -> tuple[int, tuple[str, ...]]:
    dropped = 0
    errors: list[str] = []
    for verdict in verdicts:
        if not verdict.drop:
            continue
        try:
            dropped += store.drop(verdict.drop)
        except KarchiveError as exc:
            # Kept for the next cycle: the record still reads as it did, which is safe for a
            # cancelled entry (no swap is planned for it) and is retried until it goes.
            errors.append(f"{verdict.entry_id}: cannot drop its notice record: {exc}")
    return dropped, tuple(errors)


def _failed(letter: Letter, detail: str) -> OwnerResult:
    never_told = tuple(v.entry_id for v in letter.verdicts if v.status is Status.NOTICE)
    return OwnerResult(letter.owner, Outcome.FAILED, tuple(v.entry_id for v in letter.verdicts),
                       never_told, detail)


def _unsent(verdicts: Sequence[Verdict], owners: Iterable[str], detail: str) -> list[OwnerResult]:
    rows = []
    for owner in owners:
        mine = [v for v in verdicts if v.needs_message and v.subject and v.subject.owner == owner]
        rows.append(OwnerResult(owner, Outcome.FAILED, tuple(v.entry_id for v in mine),
                                tuple(v.entry_id for v in mine if v.status is Status.NOTICE),
                                detail))
    return rows


def _send_one(letter: Letter, sending: Sending, now: int) -> OwnerResult:
    settings = sending.settings
    try:
        keep = _keep_link(letter, sending, now)
        message = render(letter, settings, Setting(sending.partner_id, sending.restore_on_play,
                                                   now), keep)
    except (KarchiveError, ValueError) as exc:
        return _failed(letter, f"{_STOP}{exc}")
    try:
        sent = sending.mailer.send(message, letter.contact.address, settings.copy_to)
    except RecipientRefused as exc:
        row = _failed(letter, str(exc))
        return OwnerResult(row.owner, Outcome.BOUNCED, row.entry_ids, row.holding, row.detail)
    except NetworkError as exc:
        return _failed(letter, f"{_STOP}{exc}")
    except TransientError as exc:
        return _failed(letter, str(exc))  # a 4xx for this owner: the next cycle tries again
    except KarchiveError as exc:
        return _failed(letter, f"{_STOP}{exc}")  # the server refuses us (sender, auth, TLS)
    sent_at = int(sending.clock())
    try:
        sending.store.record(letter, sent_at, message, sent)
    except KarchiveError as exc:
        # Accepted but not recorded: the next cycle sends it again (at least once).
        log.warning("notice to %s accepted but not recorded (it will be sent again): %s",
                    letter.owner, exc)
        return _failed(letter, f"sent but not recorded: {exc}")
    log.info("notice sent to %s for %d entries (%s)", letter.owner, len(letter.verdicts),
             letter.notice_id)
    return OwnerResult(letter.owner, Outcome.SENT, tuple(v.entry_id for v in letter.verdicts),
                       detail=sent.reply)


def _keep_link(letter: Letter, sending: Sending, now: int) -> Keep | None:
    keep = sending.settings.keep
    if keep is None:
        return None
    names = {v.entry_id: (v.subject.name if v.subject else "") for v in letter.verdicts}
    expires = after(keep.link_expiry, now)
    grant = Grant.issue(sending.random(keeplink.NONCE_BYTES), letter.owner, names, now, expires)
    sending.store.save_grant(grant)  # before the message: a link that works once it arrives
    link = keeplink.token(grant, keep.secret.get_secret_value())
    return Keep(f"{keep.base_url}/{link}", expires, after(keep.keep_for, now))
