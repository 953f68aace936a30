"""The archive's seam: an S3 bucket (``bucket.py`` over ``s3.py``) or a folder (``local.py``).

Both halves of the port are here: :class:`Store` is what the runtime asks of the archive (the
observation's inventory, one HEAD, the lease), and ``reconcilers.ports.ArchivePort`` — handed
out by :meth:`Store.archive` — what the reconcilers write through. ``controller/compose.py``
picks the implementation from the policy (``storage.bucket`` or ``storage.url``); nothing else
knows which one it holds.

    s3.py         the boto3 clients, the error table, the one call wrapper (counted)
    inventory.py  the listing: what the bucket holds per entry, in O(N/1000) calls
    writer.py     write-once streaming uploads, side files, thaw, presign (ArchivePort)
    lease.py      one actor per archive: the S3 lease object, or a lock file
    bucket.py     the bucket as a Store
    local.py      the folder: its ArchivePort, its inventory walk, and the folder as a Store
"""

from __future__ import annotations

from typing import Protocol

from controller.adapters.storage.lease import LeasePort
from controller.adapters.storage.ledger import Copies
from controller.errors import Source
from policies.costs import Holding
from policies.observed import ArchiveFacts
from reconcilers.ports import ArchivePort


class Store(Protocol):
    """The archive as the runtime sees it."""

    source: Source
    location: str  # the bucket's name, or the folder's file:// URL (messages, plan targets)

    def inventory(self, prefix: str, holdings: dict[str, Holding] | None = None) -> Copies:
        """entry id → its copy of the original, with every entry's notice markers, asked a
        page of entries at a time (``ledger.Copies.lookup``); ``holdings`` receives every
        object of karchive's layout by storage class."""
        ...

    def refresh(self, facts: ArchiveFacts) -> ArchiveFacts:
        """The copy read again, one object (its restore status now)."""
        ...

    def archive(self, *, parallel_parts: int = 4, part_memory: int | None = None
                ) -> ArchivePort:
        """The reconcilers' port onto this archive; an upload holds at most ``part_memory``
        bytes of parts, ``parallel_parts`` of them uploading at once."""
        ...

    def lease(self, key: str, *, duration: float) -> LeasePort:
        """The lease of one actor on this archive."""
        ...

    def lease_names(self, prefix: str) -> list[str]:
        """The names (under ``prefix``) of the lease objects: every shard's."""
        ...

    def restore_via(self, asked: str) -> str:
        """How a restore can reach Kaltura from here: ``asked`` ("url" or "upload") if it can."""
        ...
