"""The S3 bucket as the runtime's ``Store``: its inventory, one HEAD, its writer, its lease.

The bucket's adapter, beside the folder's (``local.py``): it owns the two boto3 clients of one
bucket (``s3.make_s3_client``: a metadata client, and a data client with a longer read timeout
for the bytes) and hands out what the runtime needs of them — the listing inventory
(``inventory.py``) for the observation, a HEAD when a listing cannot say a copy's restore
status, the ``ArchivePort`` the reconcilers write through (``writer.py``) and the lease
(``lease.py``). Every call it makes goes through ``s3.s3_call``: counted on the one metrics sink
it was given, translated by the one table, retried by botocore alone.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from controller.adapters.storage.inventory import head_archive, inventory
from controller.adapters.storage.lease import Lease, LeasePort
from controller.adapters.storage.ledger import Copies
from controller.adapters.storage.s3 import S3Metrics, make_s3_client, s3_call
from controller.adapters.storage.writer import S3Archive
from controller.errors import Source
from policies.costs import Holding
from policies.observed import ArchiveFacts
from policies.schema import StorageSettings
from reconcilers.ports import ArchivePort


class BucketStore:
    """One bucket of the policy's ``storage:`` settings."""

    source = Source.S3

    def __init__(self, settings: StorageSettings, metrics: S3Metrics, *,
                 client: Any = None) -> None:
        assert settings.bucket is not None, "a bucket store needs storage.bucket"
        self.settings = settings
        self.bucket = self.location = settings.bucket
        self.metrics = metrics
        self.client = client if client is not None else make_s3_client(settings)
        self._data: Any = None  # built on first use: plan and the reports never move bytes

    @property
    def data(self) -> Any:
        if self._data is None:
            self._data = make_s3_client(self.settings, kind="data")
        return self._data

    def inventory(self, prefix: str, holdings: dict[str, Holding] | None = None) -> Copies:
        return inventory(self.client, self.bucket, prefix, metrics=self.metrics,
                         holdings=holdings)

    def refresh(self, facts: ArchiveFacts) -> ArchiveFacts:
        """One HEAD: the copy's restore status and metadata now."""
        return head_archive(self.client, self.bucket, facts, metrics=self.metrics)

    def archive(self, *, parallel_parts: int = 4, part_memory: int | None = None
                ) -> ArchivePort:
        return S3Archive(self.client, self.bucket, parallel_parts=parallel_parts,
                         part_memory=part_memory, metrics=self.metrics, data_client=self.data)

    def lease(self, key: str, *, duration: float) -> LeasePort:
        return Lease(self.client, self.bucket, key, duration=duration, metrics=self.metrics)

    def lease_names(self, prefix: str) -> list[str]:
        """The lease objects' names under ``prefix`` (one listing: a few objects at most)."""
        names: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": f"{prefix}lease",
                                      "MaxKeys": 1000}
            if token:
                kwargs["ContinuationToken"] = token
            page = s3_call(self.metrics, "ListObjectsV2",
                           partial(self.client.list_objects_v2, **kwargs), bucket=self.bucket)
            names.extend(obj["Key"][len(prefix):] for obj in page.get("Contents", ()))
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                return names

    def restore_via(self, asked: str) -> str:
        return asked  # Kaltura fetches a presigned URL itself, or karchive uploads: both work
