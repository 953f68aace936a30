"""The archive inventory: what the bucket holds for each entry, from listings, in O(N/1000) calls.

The observer joins this with the Kaltura walk. One ``ListObjectsV2`` page covers 1,000 keys and,
with ``OptionalObjectAttributes=["RestoreStatus"]``, says whether a Glacier object is being or has
been restored (reference/s3-glacier.md) — so no HEAD per object. Every request goes through
``s3.s3_call``: counted, translated, retried by botocore alone. Both layouts are recognised
(``policies.layout``): the entry-folder original ``{prefix}{entry_id}/original/{flavor_id}.{ext}``
and the Princeton tool's bare entry id at the bucket root; when an entry has both, the
entry-folder copy wins (it records the flavor id). The zero-byte markers beside a copy
(``policies.layout``) add what karchive proved: the flavor a bare-id copy was verified to hold,
and which flavor is the placeholder it swapped in. :func:`head_archive` reads one object's
restore status and metadata for the few decisions that need more than the listing (moto's
listing, for one, carries no RestoreStatus). What the listing shows waits on disk until each
entry is settled (``ledger.py``): memory stays flat however many copies the archive holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from controller.adapters.storage.ledger import Candidate, Copies, Ledger
from controller.adapters.storage.s3 import S3Metrics, s3_call
from controller.errors import NotFound
from policies.costs import Holding, hold
from policies.layout import ENTRY_FOLDER, LEGACY, KeyKind, manifest_key, parse_key
from policies.observed import ArchiveFacts, restore_status

LIST_PAGE = 1000  # ListObjectsV2's ceiling per call


def _iso(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _pages(
    client: Any, bucket: str, prefix: str, delimiter: str | None, metrics: S3Metrics | None
) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {
            "Bucket": bucket, "Prefix": prefix, "MaxKeys": LIST_PAGE,
            "OptionalObjectAttributes": ["RestoreStatus"],
        }  # fmt: skip
        if delimiter:
            kwargs["Delimiter"] = delimiter
        if token:
            kwargs["ContinuationToken"] = token
        page: dict[str, Any] = s3_call(
            metrics, "ListObjectsV2", partial(client.list_objects_v2, **kwargs), bucket=bucket
        )
        yield page
        if not page.get("IsTruncated"):
            return
        token = page.get("NextContinuationToken")
        if not token:
            return


def _facts(obj: dict[str, Any], layout: str, flavor_id: str | None) -> ArchiveFacts:
    storage_class = obj.get("StorageClass") or "STANDARD"  # omitted for STANDARD
    restore = obj.get("RestoreStatus") or {}
    return ArchiveFacts(
        key=obj["Key"],
        size_bytes=int(obj.get("Size", 0)),
        storage_class=storage_class,
        restore=restore_status(storage_class, bool(restore.get("IsRestoreInProgress")),
                               bool(restore.get("RestoreExpiryDate"))),
        layout=layout,
        etag=str(obj.get("ETag", "")).strip('"'),
        flavor_id=flavor_id,
        restore_expiry=_iso(restore.get("RestoreExpiryDate")),
    )


def inventory(
    client: Any, bucket: str, prefix: str, *, metrics: S3Metrics | None = None,
    holdings: dict[str, Holding] | None = None,
) -> Copies:
    """entry id → its archive copy of the original flavor, for every entry the bucket holds,
    with each entry's owner-notice markers (read from the same listing), settled on disk
    (``ledger.py``). ``holdings`` (when given) receives every object of karchive's layout by
    storage class."""
    ledger = Ledger()
    try:
        # With a prefix: the root one level deep (legacy objects; the prefix folds into one
        # CommonPrefix), then the prefix. Without: entry folders sit at the root, one listing
        # sees all.
        listings = [("", "/"), (prefix, None)] if prefix else [("", None)]
        for list_prefix, delimiter in listings:
            for page in _pages(client, bucket, list_prefix, delimiter, metrics):
                for obj in page.get("Contents", ()):
                    _listed(ledger, obj, prefix, holdings)
        return ledger.settle(partial(_newest, client, bucket, prefix, metrics))
    except BaseException:
        ledger.close()
        raise


def _listed(ledger: Ledger, obj: dict[str, Any], prefix: str,
            holdings: dict[str, Holding] | None) -> None:
    """One listed object into the ledger: a marker, an original of either layout, or nothing."""
    parsed = parse_key(obj["Key"], prefix)
    if parsed is None or ledger.marker(parsed):
        return  # not karchive's, or a zero-byte marker (read when the entry is settled)
    if holdings is not None:
        hold(holdings, obj.get("StorageClass") or "STANDARD", int(obj.get("Size", 0)))
    if parsed.kind is not KeyKind.ORIGINAL:
        return
    if parsed.layout == LEGACY:
        ledger.original(parsed.entry_id, _facts(obj, LEGACY, None))
        return
    modified = obj.get("LastModified")
    ledger.original(parsed.entry_id, _facts(obj, ENTRY_FOLDER, parsed.asset_id),
                    modified.timestamp() if isinstance(modified, datetime) else None)


def _newest(client: Any, bucket: str, prefix: str, metrics: S3Metrics | None,
            entry_id: str, candidates: Sequence[Candidate]) -> ArchiveFacts:
    """Re-archived after an edit: the newest original (write-once keys differ); of those
    written in the same second, the one the manifest records (:func:`_recorded`)."""
    held: tuple[float | None, list[ArchiveFacts]] | None = None
    for modified, facts in candidates:
        if held is None or (modified is not None and held[0] is not None and modified > held[0]):
            held = (modified, [facts])
        elif modified is not None and modified == held[0]:
            held[1].append(facts)
    assert held is not None
    newest = held[1]
    return newest[0] if len(newest) == 1 else _recorded(
        client, bucket, prefix, entry_id, newest, metrics)


def _recorded(client: Any, bucket: str, prefix: str, entry_id: str,
              tied: list[ArchiveFacts], metrics: S3Metrics | None) -> ArchiveFacts:
    """Of two originals listed with the same LastModified (the listing counts whole seconds),
    the one the entry's manifest records as current: one GET, for these rare entries only.
    Without a manifest naming one of them, the last listed (a later cycle's archive step finds
    the current copy already there and records it)."""
    key = manifest_key(prefix, entry_id)
    try:
        body = s3_call(metrics, "GetObject",
                       lambda: client.get_object(Bucket=bucket, Key=key)["Body"].read(),
                       bucket=bucket, key=key)
        current = (json.loads(body).get("original") or {}).get("key")
    except (NotFound, ValueError, AttributeError):
        current = None
    return next((facts for facts in tied if facts.key == current), tied[-1])


def parse_restore_header(header: str | None) -> tuple[bool, str | None]:
    """``ongoing-request="false", expiry-date="..."`` → (in progress, expiry)."""
    if not header:
        return False, None
    in_progress = 'ongoing-request="true"' in header
    expiry = None
    if "expiry-date=" in header:
        expiry = header.split("expiry-date=", 1)[1].strip().strip('"')
    return in_progress, expiry


def head_archive(
    client: Any, bucket: str, facts: ArchiveFacts, *, metrics: S3Metrics | None = None
) -> ArchiveFacts:
    """One HEAD: the copy's current restore status and, from its metadata, flavor id and sha256."""
    head = s3_call(
        metrics, "HeadObject", lambda: client.head_object(Bucket=bucket, Key=facts.key),
        bucket=bucket, key=facts.key,
    )
    storage_class = head.get("StorageClass") or "STANDARD"
    in_progress, expiry = parse_restore_header(head.get("Restore"))
    meta = {k.lower().replace("_", "-"): v for k, v in (head.get("Metadata") or {}).items()}
    flavor_id = facts.flavor_id or meta.get("original-flavor-id") or meta.get("flavor-id")
    return ArchiveFacts(
        key=facts.key,
        size_bytes=int(head.get("ContentLength", facts.size_bytes)),
        storage_class=storage_class,
        restore=restore_status(storage_class, in_progress, bool(expiry)),
        layout=facts.layout,
        etag=str(head.get("ETag", facts.etag)).strip('"'),
        flavor_id=flavor_id,
        sha256=meta.get("sha256") or facts.sha256,
        restore_expiry=expiry,
    )
