"""The shape every reconciler shares: its Context (ports + settings), its Outcome, its steps.

A reconciler is a small class with a ``name``, its ``needs`` (the steps it journals, the Kaltura
actions and S3 permissions it calls — declared beside its behaviour, as Cloud Custodian's
actions declare theirs) and ``run(entry_id, ctx) -> Outcome``. It reads
the world fresh through the ports (never trusting the plan's snapshot for a decision that can
lose data), checks its preconditions, and runs its steps through :meth:`Context.step`, which
journals the intent before the side effect and the result after it. An outcome is ``done``,
``skipped`` (already there: idempotence) or ``waiting`` (Kaltura or S3 is working; call again
after ``retry_after`` seconds — the executor re-queues it without holding a worker).
Failures are raised as ``policies.errors`` types; the executor decides about retries.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from policies.errors import KarchiveError
from reconcilers.ports import (
    ArchivePort,
    JournalPort,
    KalturaPort,
    MetricsPort,
    NullMetrics,
    SourcePort,
)


class Result(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"  # nothing to do: the entry already is where the step takes it
    WAITING = "waiting"  # a replacement or a thaw is under way: come back later


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    message: str = ""
    bytes: int = 0
    retry_after: float | None = None
    thawing: bool = False  # waiting on a Glacier restore (hours), not on Kaltura (seconds)

    @classmethod
    def done(cls, message: str = "", bytes: int = 0) -> Outcome:
        return cls(Result.DONE, message, bytes)

    @classmethod
    def skipped(cls, message: str) -> Outcome:
        return cls(Result.SKIPPED, message)

    @classmethod
    def waiting(cls, message: str, retry_after: float, *, thawing: bool = False) -> Outcome:
        return cls(Result.WAITING, message, retry_after=retry_after, thawing=thawing)


@dataclass(frozen=True, slots=True)
class Needs:
    """What a piece of karchive needs of the outside world, declared beside its behaviour
    (Cloud Custodian's ``permissions``): the steps it journals, in the order it runs them; the
    Kaltura actions it calls (``service.action``, lower case, as the session counts them); the
    IAM actions its S3 calls need (``s3:PutObject``). ``karchive permissions`` prints the IAM
    policy from these; a test runs each reconciler and compares what it did with them."""

    steps: tuple[str, ...] = ()
    kaltura: frozenset[str] = frozenset()
    s3: frozenset[str] = frozenset()

    def __or__(self, other: Needs) -> Needs:
        steps = self.steps + tuple(s for s in other.steps if s not in self.steps)
        return Needs(steps, self.kaltura | other.kaltura, self.s3 | other.s3)


@dataclass(frozen=True, slots=True)
class Placeholder:
    """The placeholder video: its bytes (small) or the URL Kaltura fetches it from."""

    name: str
    data: bytes
    url: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True, slots=True)
class Settings:
    """What reconcilers take from the policy, flattened (one object, passed explicitly)."""

    partner_id: int
    prefix: str = "karchive/"
    layout: str = "entry-folder"
    storage_class: str = "GLACIER"
    part_size: int | None = None
    restore_tier: str = "Bulk"
    restore_days: int = 7
    restore_via: str = "url"  # "url": presigned GET fetched by Kaltura; "upload": chunked upload
    presign_expiry: int = 6 * 3600
    poll_interval: float = 2.0  # how soon to look again at a replacement in flight
    thaw_poll: float = 300.0  # how soon to look again at a Glacier restore (minutes to hours)
    legacy_placeholder_size: int | None = None  # the Princeton tool's placeholder, in bytes


@dataclass(slots=True)
class Context:
    """Everything a reconciler may touch. Built by the controller, one per run."""

    kaltura: KalturaPort
    archive: ArchivePort
    source: SourcePort
    journal: JournalPort
    settings: Settings
    placeholder: Placeholder | None = None
    metrics: MetricsPort = field(default_factory=NullMetrics)
    # When this run began: multipart uploads initiated before it are a killed run's leftovers.
    started_at: float = field(default_factory=time.time)

    @contextmanager
    def step(
        self,
        entry_id: str,
        action: str,
        step: str,
        before: Mapping[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Journal ``step``: the intent now, then ``ok`` with whatever the body put in the
        yielded dict, or ``failed`` with the error. A kill in between leaves the intent."""
        self.journal.record(entry_id, action, step, result="intent", before=before)
        after: dict[str, Any] = {}
        try:
            yield after
        except KarchiveError as exc:
            self.journal.record(entry_id, action, step, result="failed", before=before,
                                after=after or None, error=f"{type(exc).__name__}: {exc}")
            raise
        except BaseException as exc:
            self.journal.record(entry_id, action, step, result="failed", before=before,
                                error=type(exc).__name__)
            raise
        self.journal.record(entry_id, action, step, result=after.pop("_result", "ok"),
                            before=before, after=after or None)


class Reconciler(Protocol):
    """One transition. ``run`` is idempotent: called again after any interruption it finds
    what was already done and continues from there. ``needs`` declares what it journals and
    calls outside; ``uses`` names the reconcilers it runs itself (their needs count too)."""

    name: str
    needs: Needs
    uses: tuple[str, ...]

    def run(self, entry_id: str, ctx: Context) -> Outcome: ...
