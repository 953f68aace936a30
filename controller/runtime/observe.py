"""Observation, the first stage of the pipeline: Kaltura's entries joined with the archive's.

``runtime/pipeline.py`` runs it for every entry point (``plan``, ``apply``, ``run``, the
reports): read the world, write nothing. The archive is listed first (an S3 error fails the
observation before the long Kaltura walk), then the entries are walked and handed on a page at a
time (:meth:`Observer.pages`): each page's flavors fetched in batches, each entry joined with
its copy and its owner's notices (markers read from the same listing), its owner looked up when
a rule needs it — so memory holds one page of the client's objects, never the catalogue's. The
archive is listed before the walk into a ledger on disk (``adapters/storage/ledger.py``), and
each page asks it for that page's copies and notice markers.

The daemon's cycles between full walks hand the observer Kaltura's side from its entry index
instead (``source``: pages of entries with their flavors, ``runtime/index.py``), and a full
walk hands each page to the index being rebuilt (``record``); the join is the same either way.

On an S3-compatible store that ignores ``OptionalObjectAttributes`` (``storage.restore_status:
head``), the pipeline asks :meth:`Observer.refresh` for the few copies whose restore status
decides a transition (one HEAD each), so a thaw is never requested twice. On AWS (and the
sandbox) the listing's RestoreStatus is enough.

A shard (``--shard I/N``, ``policies/shards.py``) sees only its own entries: Kaltura's listing
cannot filter by a hash, so every shard walks all of it, and drops the other shards' entries as
they arrive, before their flavors, copies or owners are asked about (:meth:`Observer._owned`).
"""

from __future__ import annotations

import ctypes
import dataclasses
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.adapters.kaltura.read import (
    entries_by_id,
    flavors_for,
    iter_entries,
    server_time,
)
from controller.adapters.kaltura.session import SUB_CALL_PREFIX
from controller.adapters.storage.ledger import Copies
from controller.compose import Adapters, placeholder_size
from controller.runtime.metrics import CallCounter
from controller.runtime.progress import NoProgress, ProgressSink
from policies.costs import Holding
from policies.observed import ObservedEntry
from policies.state import with_legacy_placeholder
from reconcilers.base import Needs

PAGE = 2000  # entries per page: 5 flavor batches of ~100 entries, a few multirequests
# What an observation calls: the session, the walk, the flavors; the listing, and a HEAD where
# the listing carries no restore status (``storage.restore_status: head``).
NEEDS = Needs(kaltura=frozenset({"session.start", "media.list", "flavorasset.list"}),
              s3=frozenset({"s3:ListBucket", "s3:GetObject"}))

Page = tuple[ObservedEntry, ...]
# Kaltura's side of a page (entries with their flavors), from the walk or from the entry index.
KalturaPages = Iterator[Sequence[ObservedEntry]]
Record = Callable[[Sequence[ObservedEntry]], None]


@dataclass(frozen=True, slots=True)
class ObservationStats:
    """What one observation saw, and what it cost."""

    observed_at: int  # unix seconds, when the walk started
    placeholder_size: int | None
    entries: int
    kaltura_calls: int
    s3_calls: int
    heads: int
    seconds: float
    calls: Mapping[str, int] = field(default_factory=dict)  # "kaltura:media.list:ok" -> n
    # Every object of karchive's layout in the archive, by storage class (stats' costs).
    holdings: Mapping[str, Holding] = field(default_factory=dict)
    kaltura_clock: int | None = None  # Kaltura's clock at the walk's start, when it was read


class Observer:
    """One observation of the policy's Kaltura partner and archive, through ``adapters``."""

    def __init__(self, adapters: Adapters, *, progress: ProgressSink | None = None,
                 now: int | None = None, source: KalturaPages | None = None,
                 record: Record | None = None) -> None:
        """``source``: Kaltura's side read from elsewhere (the daemon's entry index,
        ``runtime/index.py``) instead of walked; ``record``: hears each walked page of it."""
        self.adapters = adapters
        self.source = source
        self.record = record
        self.kaltura_clock: int | None = None  # Kaltura's clock at the walk's first page
        self.policy = adapters.policy
        self.progress = progress or NoProgress()
        self.observed_at = int(time.time()) if now is None else now
        # Owner notices run on Kaltura's clock (adapters/kaltura/read.py: server_time): one
        # system.getTime per observation, only when the policy sends notices.
        self.notice_now = self.observed_at
        if self.policy.notices is not None and now is None:
            self.notice_now = server_time(adapters.kaltura)
        self.placeholder_size = placeholder_size(self.policy)
        self.holdings: dict[str, Holding] = {}
        self.heads = 0
        self.count = 0
        self.skipped = 0  # entries of other shards (``--shard``), dropped from the walk
        self._skipped_shown = 0
        counter = adapters.metrics
        self._counter = counter if isinstance(counter, CallCounter) else None
        self._before = self._tally()
        self._started = time.monotonic()
        self._seconds: float | None = None

    def pages(self, *, entry_ids: Sequence[str] | None = None,
              filter_overrides: Mapping[str, Any] | None = None
              ) -> Generator[Page, None, None]:
        """Every entry (or those ``filter_overrides`` narrow Kaltura's list to, or just
        ``entry_ids``: the entries a saved plan names, walked 500 ids at a time — Kaltura cuts
        an ``idIn`` list there — against one listing of the archive), a page at a time."""
        copies = self.adapters.store.inventory(self.policy.storage.prefix, self.holdings)
        try:
            for page in self._kaltura_pages(filter_overrides, entry_ids):
                yield self._joined(page, copies)
        finally:
            copies.close()
        self.progress.advance(self.skipped - self._skipped_shown)
        self.progress.finish()
        self._seconds = time.monotonic() - self._started

    def refresh(self, entry: ObservedEntry) -> ObservedEntry:
        """``entry`` with its copy read again (one HEAD): its restore status now."""
        assert entry.archive is not None
        self.heads += 1
        return dataclasses.replace(entry, archive=self.adapters.store.refresh(entry.archive))

    def stats(self) -> ObservationStats:
        """The observation's figures (call them once the pages are consumed)."""
        kaltura, s3, calls = self._spent()
        seconds = self._seconds if self._seconds is not None else \
            time.monotonic() - self._started
        return ObservationStats(
            observed_at=self.observed_at, placeholder_size=self.placeholder_size,
            entries=self.count, kaltura_calls=kaltura, s3_calls=s3, heads=self.heads,
            seconds=seconds, calls=calls, holdings=dict(self.holdings),
            kaltura_clock=self.kaltura_clock)

    # -- the walk ------------------------------------------------------------------------------

    def _kaltura_pages(self, filter_overrides: Mapping[str, Any] | None,
                       entry_ids: Sequence[str] | None) -> KalturaPages:
        """Pages of this shard's entries with their flavors: the source's, or walked."""
        if self.source is not None:
            yield from self.source
            return
        page: list[ObservedEntry] = []
        for entry in self._owned(self._walk(filter_overrides, entry_ids)):
            page.append(entry)
            if len(page) >= PAGE:
                yield self._with_flavors(page)
                page = []
        if page:
            yield self._with_flavors(page)

    def _with_flavors(self, page: list[ObservedEntry]) -> list[ObservedEntry]:
        flavors = flavors_for(self.adapters.kaltura, (e.entry_id for e in page))
        found = [dataclasses.replace(e, flavors=tuple(flavors.get(e.entry_id, ())))
                 for e in page]
        if self.record is not None:
            self.record(found)
        return found

    def _clock(self, value: int) -> None:
        self.kaltura_clock = value

    def _walk(self, filter_overrides: Mapping[str, Any] | None,
              entry_ids: Sequence[str] | None) -> Iterator[ObservedEntry]:
        session = self.adapters.kaltura
        if entry_ids is None:
            # An index being built needs its mark: Kaltura's clock, read in the first page's
            # request (still one HTTP request).
            clock = self._clock if self.record is not None else None
            yield from iter_entries(session, filter_overrides, on_total=self.progress.total,
                                    on_clock=clock)
            return
        self.progress.total(len(entry_ids))
        yield from entries_by_id(session, entry_ids, filter_overrides)

    def _owned(self, entries: Iterator[ObservedEntry]) -> Iterator[ObservedEntry]:
        """This shard's entries only (``policies/shards.py``): the others are dropped as
        Kaltura's listing hands them over, before their flavors are asked for."""
        shard = self.adapters.shard
        for entry in entries:
            if shard.owns(entry.entry_id):
                yield entry
            else:
                self.skipped += 1

    def _joined(self, page: Sequence[ObservedEntry], copies: Copies) -> Page:
        """The page's copies and owners; then the page's memory handed back."""
        legacy_size = self.policy.legacy_placeholder_size
        archived, notices = copies.lookup([e.entry_id for e in page])
        joined = [with_legacy_placeholder(dataclasses.replace(
            entry, archive=archived.get(entry.entry_id),
            notices=tuple(notices.get(entry.entry_id, ()))), legacy_size) for entry in page]
        directory = self.adapters.directory
        if directory is not None:
            found = directory.lookup(sorted({_owner(e) for e in joined if _owner(e)}))
            joined = [dataclasses.replace(e, owner_status=found[_owner(e)].status)
                      if _owner(e) in found else e for e in joined]
        self.count += len(joined)
        # Other shards' entries count as walked too, so the progress reaches Kaltura's total.
        self.progress.advance(len(joined) + self.skipped - self._skipped_shown)
        self._skipped_shown = self.skipped
        _release_free_memory()
        return tuple(joined)

    # -- what it cost --------------------------------------------------------------------------

    def _tally(self) -> dict[str, int]:
        return self._counter.snapshot() if self._counter is not None else {}

    def _spent(self) -> tuple[int, int, dict[str, int]]:
        after = self._tally()
        calls = {key: n - self._before.get(key, 0) for key, n in after.items()
                 if n != self._before.get(key, 0)}
        requests = {key: n for key, n in calls.items()
                    if not key.split(":")[2].startswith(SUB_CALL_PREFIX)}
        kaltura = sum(n for key, n in requests.items() if key.startswith("kaltura:"))
        s3 = sum(n for key, n in requests.items() if key.startswith("s3:"))
        return kaltura, s3, calls


def _owner(entry: ObservedEntry) -> str:
    return entry.user_id or entry.creator_id


def _release_free_memory() -> None:
    """Hand freed heap pages back to the OS between pages (glibc only; a no-op elsewhere).

    Each page parses megabytes of XML into short-lived objects interleaved with the long-lived
    observed values; without a trim the freed pages stay in the process and the peak RSS of a
    200,000-entry walk grows by hundreds of MiB over what the observation itself holds.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _malloc_trim()
