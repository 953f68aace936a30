"""How long Glacier thaws take: the clock behind ``karchive_restore_wait_seconds``.

The daemon (``runtime/daemon.py``) feeds it each cycle's assessments (``see``, as the pipeline
makes them) and the executor's reports (``requested``). A thaw is timed from its request (this
daemon's, or the first cycle that found one under way) to the first cycle that sees the copy
thawed, precise to a restore-check interval: the restore check (``runtime/watch.py``) feeds it
the few entries it observes and settles only those (``cycle_done(only=…)``), and the waits it
settles are published by the next cycle, the one that also publishes
``karchive_thaws_in_progress``, so the two move together. A thaw whose entry vanished or whose
copy froze again is dropped, not observed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection

from policies.counts import thawing
from policies.observed import RestoreStatus
from policies.plan import Action, Assessment


class ThawClock:
    """Thaws under way, by entry id, with when each was first known (unix seconds)."""

    def __init__(self, observe: Callable[[float], None],
                 clock: Callable[[], float] = time.time) -> None:
        self._observe = observe  # Metrics.restore_wait
        self._clock = clock
        self._since: dict[str, float] = {}
        self._seen: dict[str, RestoreStatus] = {}
        self._settled: list[float] = []  # waits a partial observation measured, unpublished
        self._lock = threading.Lock()

    def see(self, assessment: Assessment) -> None:
        """One entry of this cycle's observation."""
        entry = assessment.entry
        if entry.archive is not None:
            self._seen[entry.entry_id] = entry.archive.restore
        if thawing(entry):
            with self._lock:
                self._since.setdefault(entry.entry_id, self._clock())

    def cycle_done(self, only: Collection[str] | None = None) -> None:
        """The observation is complete: settle the thaws it no longer shows as thawing. An
        observation of ``only`` some entries settles those alone and keeps their waits for the
        next whole one to publish."""
        now = self._clock()
        with self._lock:
            for entry_id in list(self._since):
                if only is not None and entry_id not in only:
                    continue
                restore = self._seen.get(entry_id)
                if restore is RestoreStatus.THAWING:
                    continue
                since = self._since.pop(entry_id)
                if restore is RestoreStatus.THAWED:
                    self._settled.append(now - since)
            if only is None:
                for wait in self._settled:
                    self._observe(wait)
                self._settled = []
        self._seen = {}

    def requested(self, entry_id: str, action: str, result: str) -> None:
        """The executor's report of one item: a thaw requested starts its restore wait."""
        if action == Action.THAW.value and result == "done":
            with self._lock:
                self._since.setdefault(entry_id, self._clock())
