"""A shard's lease: its own lease object, and no live lease of another shard count beside it.

Each shard of a set holds ``{prefix}lease-I-of-N.json`` (an unsharded daemon or ``apply``:
``{prefix}lease.json``, shard 0 of 1) through the ordinary lease (``lease.py``), so a standby of
the same shard waits and takes over exactly as for one daemon. Shards of the same N own disjoint
entries (``policies/shards.py``) and act side by side.

Shards of different N do not: during a re-split (0/2 and 1/2 still running while 0/3 starts),
or beside an unsharded daemon, an entry is owned by one shard of each set. The rule that keeps
two actors off the same entry: **a shard acts only while its own lease is held and, checked
after its own lease was written, no lease of a different N is live.** Every check lists the
lease objects (one ``ListObjectsV2`` under ``{prefix}lease``) and reads only those of another
N, and every renewal (a third of the lease's duration) checks again. Of two daemons of
different N, the one that checks later sees the other's lease (it was written before that
check: S3 reads are strongly consistent), so it stands by; the one that checked earlier sees the
newcomer at its next renewal and stops at its next safe point (the executor asks
:attr:`held`). While both run, neither acts — safe, and said in the log and by
``karchive_leader`` 0 — until the old set stops and releases its leases (a StatefulSet's rolling
update does it pod by pod) or they expire. A lease is live as for the lease itself: unexpired,
and not held by a process known to be gone (``lease.holder_is_gone``).

When the listing fails, the own lease may be renewed but the shard does not act (a check that
cannot be made is a check that failed): :attr:`held` turns False and the error is raised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from controller.adapters.storage.lease import LeasePort, LeaseRecord, holder_is_gone
from controller.errors import KarchiveError
from policies.shards import Shard, shard_of_lease

log = logging.getLogger(__name__)

# The other lease objects of the archive: (its name under the prefix, a reader of it).
Siblings = Callable[[], Iterable[tuple[str, Callable[[], LeaseRecord | None]]]]


class ShardLease:
    """:class:`~controller.adapters.storage.lease.LeasePort` of one shard (``own``), which
    holds only while no lease of another shard count is live (``siblings`` lists them)."""

    def __init__(self, own: LeasePort, shard: Shard, siblings: Siblings, *,
                 wall: Callable[[], float] = time.time) -> None:
        self.own = own
        self.shard = shard
        self.duration = own.duration
        self._siblings = siblings
        self._wall = wall
        self._lock = threading.Lock()
        self._clear = False  # the last check after our own write found no other N live
        self._blocker: tuple[str, LeaseRecord] | None = None

    @property
    def held(self) -> bool:
        with self._lock:
            return self._clear and self.own.held

    def acquire(self) -> bool:
        """Take or renew our own lease, then check the other shard counts'; whether we may
        act. Raises (a TransientError, as the lease does) when the check cannot be made."""
        with self._lock:
            self._clear = False
            if not self.own.acquire():
                return False
            try:
                blocker = self._live_other()
            except KarchiveError:
                self._blocker = None
                raise
            if blocker is not None and blocker != self._blocker:
                log.warning("standby: shard %s of another shard count holds a live lease (%s); "
                            "stop the daemons of one shard count", blocker[0],
                            blocker[1].holder, extra={"shard": str(self.shard),
                                                      "other_lease": blocker[0]})
            elif blocker is None and self._blocker is not None:
                log.info("no other shard count holds a lease any more: acting",
                         extra={"shard": str(self.shard)})
            self._blocker = blocker
            self._clear = blocker is None
            return self._clear

    def release(self) -> None:
        with self._lock:
            self._clear = False
        self.own.release()

    def read(self) -> LeaseRecord | None:
        """The lease that keeps us from acting: another shard count's when one does, else ours
        (for ``apply``'s one-line refusal)."""
        with self._lock:
            blocker = self._blocker
        return blocker[1] if blocker is not None else self.own.read()

    def _live_other(self) -> tuple[str, LeaseRecord] | None:
        """The first live lease of another shard count: (its shard ``I/N``, its record)."""
        for name, read in self._siblings():
            other = shard_of_lease(name)
            if other is None or other.count == self.shard.count:
                continue  # not a lease, or a sibling of our own set (disjoint entries)
            record = read()
            if record is not None and record.expires_at > self._wall() \
                    and not holder_is_gone(record.holder):
                return str(other), record
        return None
