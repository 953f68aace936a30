"""Observation: Kaltura's entries and flavors joined with the bucket's inventory, per entry.

The first stage of every cycle (``plan``, ``apply``, the reports, the daemon): read the world,
write nothing. The bucket is listed first (an S3 error fails the observation before the long
Kaltura walk), then the entries are walked page by page and each page's flavors fetched in
batches, so memory holds the observed values and never the client's objects. On an
S3-compatible store that ignores ``OptionalObjectAttributes`` (``storage.restore_status: head``),
the few archive objects whose restore status decides a transition (a placeholder the policy wants
back, whose copy sits in a cold class) get one HEAD each, so a thaw is never requested twice.
On AWS (and the sandbox) the listing's RestoreStatus is enough.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from controller.adapters.kaltura.read import flavors_for, iter_entries
from controller.adapters.kaltura.session import SUB_CALL_PREFIX, KalturaSession
from controller.adapters.storage import backend
from controller.adapters.storage.inventory import COLD_CLASSES, head_archive
from controller.runtime.progress import NoProgress, ProgressSink
from policies.costs import Holding
from policies.desired import desired_state
from policies.observed import ArchiveFacts, ObservedEntry, OwnerStatus
from policies.schema import DesiredState, Policy
from policies.state import ObservedState, classify, with_legacy_placeholder

CHUNK = 2000  # entries per flavor round: 5 batches of ~100 entries, a few multirequests
ID_IN_LIMIT = 500  # Kaltura cuts an idIn list at 500 values (reference/kaltura-api.md §5)


class OwnerInfoLike(Protocol):
    @property
    def status(self) -> OwnerStatus: ...


class OwnerLookup(Protocol):
    """What ``controller.adapters.ldap.Directory`` offers: one batched lookup per cycle."""

    def lookup(self, user_ids: Iterable[str]) -> Mapping[str, OwnerInfoLike]: ...


class CallCounter:
    """A metrics sink that keeps call counts in memory (``kaltura_call`` / ``s3_call``)."""

    def __init__(self) -> None:
        self.kaltura: dict[tuple[str, str], int] = {}
        self.s3: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def kaltura_call(self, operation: str, outcome: str) -> None:
        with self._lock:
            self.kaltura[(operation, outcome)] = self.kaltura.get((operation, outcome), 0) + 1

    def s3_call(self, operation: str, outcome: str) -> None:
        with self._lock:
            self.s3[(operation, outcome)] = self.s3.get((operation, outcome), 0) + 1

    @property
    def kaltura_total(self) -> int:
        """HTTP requests to Kaltura (a multirequest is one, whatever its sub-calls did)."""
        return sum(n for (_op, outcome), n in self.kaltura.items()
                   if not outcome.startswith(SUB_CALL_PREFIX))

    @property
    def s3_total(self) -> int:
        return sum(self.s3.values())


@dataclass(frozen=True, slots=True)
class Observation:
    """What one observation saw, and what it cost."""

    entries: tuple[ObservedEntry, ...]
    observed_at: int  # unix seconds, when the walk started
    placeholder_size: int | None
    kaltura_calls: int
    s3_calls: int
    heads: int
    seconds: float
    calls: Mapping[str, int] = field(default_factory=dict)  # "kaltura:media.list:ok" -> n
    # Every object of karchive's layout in the archive, by storage class (stats' costs).
    holdings: Mapping[str, Holding] = field(default_factory=dict)


def placeholder_size(policy: Policy) -> int | None:
    """Bytes of the placeholder video, when it is a local file (tells it apart from content)."""
    location = policy.placeholder
    if not location:
        return None
    path = Path(location[len("file://"):] if location.startswith("file://") else location)
    if "://" in location and not location.startswith("file://"):
        return None
    try:
        return path.stat().st_size
    except OSError:
        return None


def observe(
    session: KalturaSession,
    s3: Any,
    policy: Policy,
    progress: ProgressSink | None = None,
    *,
    owners: OwnerLookup | None = None,
    counter: CallCounter | None = None,
    filter_overrides: Mapping[str, Any] | None = None,
    entry_ids: Sequence[str] | None = None,
    now: int | None = None,
) -> Observation:
    """Observe every entry (or those ``filter_overrides`` narrow Kaltura's list to, or just
    ``entry_ids``: the entries a saved plan names, walked 500 ids at a time — Kaltura cuts an
    ``idIn`` list there — against one listing of the bucket).

    ``counter`` receives the call counts (pass the session's metrics object to keep one tally);
    ``owners`` fills ``owner_status`` with one batched lookup (else it stays unknown).
    """
    started = time.monotonic()
    observed_at = int(time.time()) if now is None else now
    sink = progress or NoProgress()
    tally = counter if counter is not None else _counter_of(session)
    storage = policy.storage
    holdings: dict[str, Holding] = {}
    archives = backend.inventory(storage, s3, metrics=tally, holdings=holdings)

    entries: list[ObservedEntry] = []
    chunk: list[ObservedEntry] = []

    def flush() -> None:
        flavors = flavors_for(session, (e.entry_id for e in chunk))
        for entry in chunk:
            entries.append(with_legacy_placeholder(dataclasses.replace(
                entry,
                flavors=tuple(flavors.get(entry.entry_id, ())),
                archive=archives.get(entry.entry_id),
            ), policy.legacy_placeholder_size))
        sink.advance(len(chunk))
        chunk.clear()
        _release_free_memory()

    for entry in _walk(session, filter_overrides, entry_ids, sink):
        chunk.append(entry)
        if len(chunk) >= CHUNK:
            flush()
    if chunk:
        flush()
    sink.finish()

    if owners is not None:
        entries = _with_owners(entries, owners)
    size = placeholder_size(policy)
    heads = 0
    # AWS lists RestoreStatus with the objects (absent: never restored), so its listing decides.
    # A store that ignores OptionalObjectAttributes is named in the policy: there, the few
    # copies whose restore status decides a transition are read with a HEAD each.
    trust_listing = storage.restore_status == "listing"
    for index, entry in enumerate(entries):
        if not trust_listing and _restore_status_decides(entry, policy, observed_at, size):
            assert entry.archive is not None
            fresh = head_archive(s3, storage.location, entry.archive, metrics=tally)
            entries[index] = dataclasses.replace(entry, archive=fresh)
            heads += 1

    calls = {f"kaltura:{op}:{outcome}": n for (op, outcome), n in tally.kaltura.items()}
    calls.update({f"s3:{op}:{outcome}": n for (op, outcome), n in tally.s3.items()})
    return Observation(
        entries=tuple(entries),
        observed_at=observed_at,
        placeholder_size=size,
        kaltura_calls=tally.kaltura_total,
        s3_calls=tally.s3_total,
        heads=heads,
        seconds=time.monotonic() - started,
        calls=calls,
        holdings=holdings,
    )


def _walk(session: KalturaSession, filter_overrides: Mapping[str, Any] | None,
          entry_ids: Sequence[str] | None, sink: ProgressSink) -> Iterator[ObservedEntry]:
    if entry_ids is None:
        yield from iter_entries(session, filter_overrides, on_total=sink.total)
        return
    sink.total(len(entry_ids))
    for start in range(0, len(entry_ids), ID_IN_LIMIT):
        ids = ",".join(entry_ids[start:start + ID_IN_LIMIT])
        yield from iter_entries(session, {**(filter_overrides or {}), "idIn": ids})


def _release_free_memory() -> None:
    """Hand freed heap pages back to the OS between chunks (glibc only; a no-op elsewhere).

    Each chunk parses megabytes of XML into short-lived objects interleaved with the long-lived
    observed values; without a trim the freed pages stay in the process and the peak RSS of a
    200,000-entry walk grows by hundreds of MiB over what the observation itself holds.
    """
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None


def _counter_of(session: KalturaSession) -> CallCounter:
    # Count through the session's own metrics when it is a CallCounter, else a private tally
    # (wrapping the session's sink so both see every Kaltura call).
    if isinstance(session.metrics, CallCounter):
        return session.metrics
    tee = _Tee(session.metrics)
    session.metrics = tee
    return tee


class _Tee(CallCounter):
    def __init__(self, inner: Any) -> None:
        super().__init__()
        self._inner = inner

    def kaltura_call(self, operation: str, outcome: str) -> None:
        super().kaltura_call(operation, outcome)
        self._inner.kaltura_call(operation, outcome)

    def s3_call(self, operation: str, outcome: str) -> None:
        super().s3_call(operation, outcome)
        recorder = getattr(self._inner, "s3_call", None)
        if recorder is not None:
            recorder(operation, outcome)


def _with_owners(entries: list[ObservedEntry], owners: OwnerLookup) -> list[ObservedEntry]:
    ids = {e.user_id or e.creator_id for e in entries if e.user_id or e.creator_id}
    found = owners.lookup(sorted(ids))
    return [
        dataclasses.replace(e, owner_status=found[e.user_id or e.creator_id].status)
        if (e.user_id or e.creator_id) in found else e
        for e in entries
    ]


def _restore_status_decides(
    entry: ObservedEntry, policy: Policy, now: int, size: int | None
) -> bool:
    """A cold copy of a placeholder the policy wants back, or of an emptied entry it manages:
    thaw, wait, restore or recover hangs on it."""
    copy: ArchiveFacts | None = entry.archive
    if copy is None or copy.storage_class not in COLD_CLASSES:
        return False
    found = classify(entry, size)
    desired = desired_state(entry, policy, now)
    if found.recoverable:
        return desired.managed
    if found.state is not ObservedState.PLACEHOLDER:
        return False
    return desired.state is DesiredState.ARCHIVED


def observe_policy(
    policy: Policy,
    *,
    progress: ProgressSink | None = None,
    owners: OwnerLookup | None = None,
    filter_overrides: Mapping[str, Any] | None = None,
) -> Observation:
    """Connect with the policy's settings and observe: what ``plan`` and the reports run.

    Owners are looked up when a rule needs them (``owner_status``) and the policy names a
    directory, or when the caller passes ``owners`` (``list --with-owner``).
    """
    counter = CallCounter()
    session = KalturaSession(policy.kaltura, metrics=counter)
    s3 = backend.connect(policy.storage)
    directory = None
    if owners is None and policy.directory is not None and policy.uses_owner_status():
        from controller.adapters.ldap import Directory

        owners = directory = Directory(policy.directory)
    try:
        return observe(session, s3, policy, progress, owners=owners, counter=counter,
                       filter_overrides=filter_overrides)
    finally:
        if directory is not None:
            directory.close()
