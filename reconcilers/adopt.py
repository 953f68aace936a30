"""adopt: prove that a copy karchive did not write holds the current original, without a thaw.

Called by the archive reconciler (and by recover) for a bare-id object the Princeton tool left:
``boto3``'s ``upload_file`` with its defaults (reference/prior-tools.md) — a single PUT below
8 MiB, whose ETag is the MD5 of the bytes, else a multipart upload of 8 MiB parts (doubled by
s3transfer's ``ChunksizeAdjuster`` until there are at most 10,000), whose ETag is
``md5(md5(part 1) ‖ … ‖ md5(part N))-N``. An ETag survives the lifecycle transition to GLACIER,
so streaming the original from Kaltura and recomputing that ETag with the same part size checks
the copy's content against the CURRENT original while the copy stays frozen. A SHA-256 the store
records for the object (the directory archive's, or one set at upload) is compared instead when
there is one.

Proven, the copy gets what karchive's own copies have: the SHA-256 of that same download and the
flavor id it matched, in the manifest (where replace and restore look) and as a ``verified``
marker named by the flavor id and the ETag (what the observer sees in the listing). Not proven
(another ETag, an ETag whose part count fits no 8 MiB-based part size, a size that differs), the
object is left exactly as it is and the caller archives the entry again beside it.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from policies.errors import KarchiveError
from policies.layout import verified_key
from policies.observed import FlavorFacts
from reconcilers import manifest
from reconcilers.base import Context
from reconcilers.ports import EntryDetails, ObjectInfo

ACTION = "archive"
BOTO3_PART = 8 << 20  # boto3's multipart_threshold and multipart_chunksize defaults
MAX_PARTS = 10_000
MIN_PART, MAX_PART = 5 << 20, 5 << 30
_READ = 8 << 20


def boto3_part_size(size: int) -> int:
    """The part size ``upload_file`` with boto3's defaults uses for ``size`` bytes."""
    part = BOTO3_PART
    while math.ceil(size / part) > MAX_PARTS:
        part *= 2
    return min(max(part, MIN_PART), MAX_PART)


def etag_part_size(etag: str, size: int) -> int | None:
    """The part size to recompute ``etag`` with: 0 for a single-part (plain MD5) ETag, the
    boto3 part size when the ``-N`` suffix agrees with it, or None when no 8 MiB-based sizing
    explains the ETag (then nothing can be proven from it)."""
    etag = etag.strip('"')
    if "-" not in etag:
        return 0 if len(etag) == 32 and size < BOTO3_PART else None
    digest, _, count = etag.partition("-")
    if len(digest) != 32 or not count.isdigit() or size < BOTO3_PART:
        return None
    part = boto3_part_size(size)
    return part if math.ceil(size / part) == int(count) else None


class EtagHasher:
    """S3's ETag of bytes fed in any chunking: MD5, or MD5 of the parts' MD5s with ``-N``."""

    def __init__(self, part_size: int) -> None:
        self.part_size = part_size
        self._whole = hashlib.md5(usedforsecurity=False)
        self._part = hashlib.md5(usedforsecurity=False)
        self._in_part = 0
        self._digests: list[bytes] = []

    def update(self, data: bytes) -> None:
        if not self.part_size:
            self._whole.update(data)
            return
        view = memoryview(data)
        while view:
            take = min(len(view), self.part_size - self._in_part)
            self._part.update(view[:take])
            self._in_part += take
            view = view[take:]
            if self._in_part == self.part_size:
                self._close_part()

    def _close_part(self) -> None:
        self._digests.append(self._part.digest())
        self._part = hashlib.md5(usedforsecurity=False)
        self._in_part = 0

    def hexdigest(self) -> str:
        if not self.part_size:
            return self._whole.hexdigest()
        if self._in_part:
            self._close_part()
        combined = hashlib.md5(b"".join(self._digests), usedforsecurity=False).hexdigest()
        return f"{combined}-{len(self._digests)}"


def stream_digests(ctx: Context, url: str, size: int, part_size: int | None
                   ) -> tuple[str, str | None]:
    """(SHA-256, ETag with ``part_size`` or None) of ``size`` bytes read from ``url``."""
    sha = hashlib.sha256()
    etag = EtagHasher(part_size) if part_size is not None else None
    reader = ctx.source.open(url, size)
    try:
        while chunk := reader.read(_READ):
            sha.update(chunk)
            if etag is not None:
                etag.update(chunk)
    finally:
        reader.close()
    return sha.hexdigest(), None if etag is None else etag.hexdigest()


def verify(ctx: Context, entry_id: str, url: str, info: ObjectInfo, size: int,
           action: str = ACTION, step: str = "verify_legacy") -> str | None:
    """Stream ``size`` bytes from ``url`` (Kaltura) and compare them with the bare-id copy
    ``info``: its recorded SHA-256 when the store has one, else its ETag recomputed. The SHA-256
    of the download when they match; None (journalled as ``mismatch``) when they do not or
    cannot be compared."""
    recorded = _recorded_sha256(ctx, info)
    part = None if recorded else etag_part_size(info.etag, info.size_bytes)
    before = {"key": info.key, "etag": info.etag, "size": info.size_bytes,
              "by": "sha256" if recorded else "etag"}
    with ctx.step(entry_id, action, step, before=before) as after:
        if info.size_bytes != size or (recorded is None and part is None):
            after.update(_result="mismatch", why="size differs" if info.size_bytes != size
                         else "ETag fits no boto3 part size")
            return None
        sha, etag = stream_digests(ctx, url, size, part)
        proven = sha == recorded if recorded else etag == info.etag.strip('"')
        after.update(sha256=sha, etag=etag, _result="ok" if proven else "mismatch")
    return sha if proven else None


def record(ctx: Context, entry: EntryDetails, original: FlavorFacts, info: ObjectInfo,
           sha: str, previous: dict[str, Any] | None, verified_by: str) -> dict[str, Any]:
    """Write what was proven: the manifest's current original (the bare-id key, the flavor it
    holds, the SHA-256 and ETag) and the ``verified`` marker the listing shows."""
    entry_id = entry.entry_id
    prefix = ctx.settings.prefix
    record_ = {
        "flavor_id": original.flavor_id, "key": info.key, "size_bytes": original.size_bytes,
        "ext": original.file_ext, "sha256": sha, "etag": info.etag.strip('"'),
        "adopted": True, "verified_by": verified_by,
    }
    marker = verified_key(prefix, entry_id, original.flavor_id, info.etag)
    with ctx.step(entry_id, ACTION, "record_adopted",
                  before={"key": info.key, "flavor_id": original.flavor_id}) as after:
        document = manifest.build(previous, entry, record_, None)
        manifest.write(ctx.archive, prefix, document)
        ctx.archive.put_bytes(marker, b"", content_type="application/octet-stream")
        after["marker"] = marker
    return document


def _recorded_sha256(ctx: Context, info: ObjectInfo) -> str | None:
    if info.metadata.get("sha256"):
        return str(info.metadata["sha256"])
    if not info.readable:
        return None  # a frozen object's tags cannot be read (InvalidObjectState)
    try:
        return ctx.archive.get_sha256(info.key)
    except KarchiveError:  # unreadable here only means "no recorded checksum": the ETag decides
        return None
