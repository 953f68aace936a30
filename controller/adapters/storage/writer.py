"""The write side of the archive bucket: streaming write-once uploads, side files, thaw, presign.

Satisfies ``reconcilers.ports.ArchivePort``. The archive reconciler hands it a byte stream (a
Kaltura download) and a size; it streams the bytes into an S3 multipart upload with no local file:
parts are read in order in the caller's thread (where the whole object's SHA-256 is computed) and
uploaded by a small bounded pool, so memory stays at part size × (parts in flight + 1) whatever the
video's size. The parts in flight are the policy's ``limits.parallel_parts``, fewer when the
copy's share of ``limits.copy_memory`` (``part_memory``: the budget divided by the copies run at
once) cannot hold them and the part being read (:func:`parts_in_flight`); freed part buffers
go back to the system (:func:`give_back_freed_parts`), so the process's memory follows them. The
first part is S3's smallest (:func:`first_part_for`), so bytes reach S3 soon after a copy
starts. Each part carries its own SHA256 checksum for S3 to validate; the upload completes with
``IfNoneMatch="*"`` so a second runner can never clobber a copy (reference/s3-glacier.md:
boto3's managed transfer does not pass IfNoneMatch, hence the three low-level calls). Any
failure aborts the multipart upload.

The whole object's SHA-256 is only known once the last byte has streamed, after the object's
metadata was fixed by CreateMultipartUpload; it is recorded as the object tag ``sha256`` (set
without copying the object) and in the manifest. Objects small enough for one PUT carry it in
their metadata as well.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from controller.adapters.storage.inventory import parse_restore_header
from controller.adapters.storage.s3 import LOW_LEVEL, Body, S3Metrics, s3_call, translate
from controller.errors import (
    Conflict,
    InProgress,
    IntegrityError,
    KarchiveError,
    NotFound,
    PermanentError,
    Source,
    TransientError,
)
from policies.observed import restore_status
from policies.schema import DEFAULT_PART_SIZE
from reconcilers.ports import ObjectInfo, Readable, UploadResult

MiB = 1 << 20
MAX_PARTS = 10_000
FIRST_PART = 5 * MiB  # S3's smallest part (reference/s3-glacier.md)
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
_allocator_lock = threading.Lock()
_allocator_set = False


def part_size_for(size: int, configured: int | None = None) -> int:
    """Part size for an object of ``size`` bytes: the policy's (default 16 MiB) or larger, so
    the object fits in 10,000 parts; always a whole number of MiB."""
    wanted = max(configured or DEFAULT_PART_SIZE, math.ceil(size / MAX_PARTS))
    return math.ceil(wanted / MiB) * MiB


def first_part_for(size: int, part: int) -> int:
    """The first part's size: S3's smallest, so a copy's first bytes reach S3 once 5 MiB have
    arrived rather than a whole part (at Kaltura's ~9 MB/s a stream, half a second instead of
    two: when a cycle starts its copies together, the upload link is not left idle meanwhile);
    ``part`` itself when that would take the object past 10,000 parts."""
    if part <= FIRST_PART or 1 + math.ceil((size - FIRST_PART) / part) > MAX_PARTS:
        return part
    return FIRST_PART


def give_back_freed_parts() -> None:
    """Part buffers go back to the system when they are freed (glibc; elsewhere a no-op).

    glibc raises its mmap threshold to the largest chunk freed so far, so after the first part
    every part buffer comes from a heap, and the heaps of many threads keep what they once held:
    the process would stay at its high-water mark, past ``limits.copy_memory``. A fixed
    threshold (mallopt, which also stops that adjustment) gives each buffer of 1 MiB or more a
    mapping of its own, unmapped when it is freed. Set once per process.
    """
    global _allocator_set
    with _allocator_lock:
        if _allocator_set:
            return
        _allocator_set = True
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, MiB)


def parts_in_flight(part: int, parallel_parts: int, part_memory: int | None) -> int:
    """Parts of one copy uploading at once: ``parallel_parts``, or fewer so that they and the
    part being read fit in ``part_memory`` bytes (None: no budget); never fewer than one, so a
    copy always moves (a part larger than half the budget — a video past 10,000 parts of the
    policy's size — still takes two)."""
    if part_memory is None:
        return parallel_parts
    return max(1, min(parallel_parts, part_memory // part - 1))


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


class S3Archive:
    """The bucket adapter (ArchivePort). ``parallel_parts`` bounds in-flight parts per upload,
    ``part_memory`` the bytes of parts one upload holds (:func:`parts_in_flight`)."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        parallel_parts: int = 4,
        part_memory: int | None = None,
        metrics: S3Metrics | None = None,
        data_client: Any = None,
    ) -> None:
        self.client = client
        # The bytes (parts, completions, whole objects, streamed reads) go through a client
        # with a longer read timeout (storage/client.py); tests may pass one client for both.
        self.data = data_client if data_client is not None else client
        self.bucket = bucket
        self.parallel_parts = max(1, parallel_parts)
        self.part_memory = part_memory
        self._metrics = metrics
        give_back_freed_parts()

    def _call(self, operation: str, key: str | None, fn: Callable[[], Any]) -> Any:
        """One S3 request through the storage seam (counted; translated by its table, where a
        lost conditional write is a Conflict and a restore asked twice is InProgress)."""
        return s3_call(self._metrics, operation, fn, bucket=self.bucket, key=key)

    # -- reads ---------------------------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo | None:
        try:
            answer = self._call(
                "HeadObject", key,
                lambda: self.client.head_object(Bucket=self.bucket, Key=key),
            )
        except NotFound:
            return None
        storage_class = answer.get("StorageClass") or "STANDARD"
        in_progress, expiry = parse_restore_header(answer.get("Restore"))
        return ObjectInfo(
            key=key,
            size_bytes=int(answer["ContentLength"]),
            etag=str(answer.get("ETag", "")).strip('"'),
            storage_class=storage_class,
            # A cold object answers x-amz-restore once a restore was asked (done or not).
            restore=restore_status(storage_class, in_progress,
                                   bool(expiry or answer.get("Restore"))),
            metadata=dict(answer.get("Metadata") or {}),
            last_modified=str(answer.get("LastModified", "")),
        )

    def get_bytes(self, key: str) -> bytes:
        answer = self._call(
            "GetObject", key, lambda: self.client.get_object(Bucket=self.bucket, Key=key)
        )
        return Body(answer["Body"], self.bucket, key).read()

    def open_read(self, key: str) -> Readable:
        answer = self._call(
            "GetObject", key, lambda: self.data.get_object(Bucket=self.bucket, Key=key)
        )
        return Body(answer["Body"], self.bucket, key)

    def list_keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = iter(paginator.paginate(Bucket=self.bucket, Prefix=prefix))
        while True:
            page = self._call("ListObjectsV2", None, lambda: next(pages, None))
            if page is None:
                return
            for item in page.get("Contents", ()):
                yield item["Key"]

    def get_sha256(self, key: str) -> str | None:
        """The whole object's SHA-256 as recorded at upload (metadata, else the object tag)."""
        info = self.head(key)
        if info is None:
            raise NotFound(f"{key} is not in bucket {self.bucket}", source=Source.S3)
        if info.metadata.get("sha256"):
            return info.metadata["sha256"]
        try:
            answer = self._call(
                "GetObjectTagging", key,
                lambda: self.client.get_object_tagging(Bucket=self.bucket, Key=key),
            )
        except PermanentError:
            # moto refuses GetObjectTagging on GLACIER objects (InvalidObjectState); the
            # manifest holds the same value, so the caller falls back to it.
            return None
        for tag in answer.get("TagSet", ()):
            if tag.get("Key") == "sha256":
                return str(tag.get("Value"))
        return None

    # -- writes --------------------------------------------------------------------------------

    def set_sha256(self, key: str, sha256: str) -> None:
        self._call(
            "PutObjectTagging", key,
            lambda: self.client.put_object_tagging(
                Bucket=self.bucket, Key=key,
                Tagging={"TagSet": [{"Key": "sha256", "Value": sha256}]},
            ),
        )

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> str:
        """A small object (manifest, thumbnail, caption): overwritable, checksummed."""
        answer = self._call(
            "PutObject", key,
            lambda: self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                Metadata=dict(metadata or {}), ChecksumSHA256=_b64_sha256(data),
            ),
        )
        return str(answer.get("ETag", "")).strip('"')

    def upload_stream(
        self,
        key: str,
        source: Readable,
        size: int,
        *,
        metadata: Mapping[str, str],
        storage_class: str,
        part_size: int | None = None,
        before_complete: Callable[[str], None] | None = None,
    ) -> UploadResult:
        """Stream exactly ``size`` bytes of ``source`` to ``key``, write-once.

        Returns the SHA-256 of the bytes streamed. A key that already holds a copy (412 on
        completion) is accepted only if its metadata names the same flavor and size: then
        ``written_by_us`` is False; otherwise Conflict. ``before_complete(sha256)`` runs once
        every byte has streamed and before the object becomes visible: it may refuse the bytes
        (raise) or record the checksum first (the manifest), so a kill right after completion
        never leaves a copy whose checksum is recorded nowhere.
        """
        part = part_size_for(size, part_size)
        if size <= part:
            return self._put_once(key, source, size, metadata, storage_class, before_complete)
        created = self._call(
            "CreateMultipartUpload", key,
            lambda: self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, Metadata=dict(metadata),
                StorageClass=storage_class, ChecksumAlgorithm="SHA256",
                ContentType="application/octet-stream",
            ),
        )
        upload_id = created["UploadId"]
        try:
            sha, parts = self._stream_parts(key, upload_id, source, size, part)
            if before_complete is not None:
                before_complete(sha)
            return self._complete(key, upload_id, parts, size, sha, metadata)
        except BaseException:
            self._abort(key, upload_id)
            raise

    def _read_exact(self, source: Readable, n: int) -> bytes:
        data = source.read(n)
        if len(data) != n:
            raise IntegrityError(f"source ended after {len(data)} of {n} bytes of a part")
        return data

    def _put_once(
        self, key: str, source: Readable, size: int, metadata: Mapping[str, str],
        storage_class: str, before_complete: Callable[[str], None] | None,
    ) -> UploadResult:
        data = self._read_exact(source, size) if size else b""
        sha = hashlib.sha256(data).hexdigest()
        if before_complete is not None:
            before_complete(sha)
        try:
            answer = self._call(
                "PutObject", key,
                lambda: self.data.put_object(
                    Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*",
                    Metadata={**metadata, "sha256": sha}, StorageClass=storage_class,
                    ChecksumSHA256=_b64_sha256(data), ContentType="application/octet-stream",
                ),
            )
        except Conflict:
            return self._accept_existing(key, size, sha, metadata, parts=1)
        return UploadResult(key, size, sha, str(answer.get("ETag", "")).strip('"'), 1, True)

    def _stream_parts(
        self, key: str, upload_id: str, source: Readable, size: int, part: int
    ) -> tuple[str, list[dict[str, Any]]]:
        whole = hashlib.sha256()
        in_flight = parts_in_flight(part, self.parallel_parts, self.part_memory)
        slots = threading.BoundedSemaphore(in_flight)
        futures: list[Future[dict[str, Any]]] = []
        failed = threading.Event()

        def upload(number: int, data: bytes) -> dict[str, Any]:
            try:
                if failed.is_set():
                    raise TransientError("upload abandoned after another part failed",
                                         source=Source.S3)
                checksum = _b64_sha256(data)
                answer = self._call(
                    "UploadPart", key,
                    lambda: self.data.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                        Body=data, ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum,
                    ),
                )
                return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum}
            except BaseException:
                failed.set()
                raise
            finally:
                slots.release()

        with ThreadPoolExecutor(in_flight, thread_name_prefix="part") as pool:
            try:
                offset, number, first = 0, 1, first_part_for(size, part)
                while offset < size:
                    n = min(first if number == 1 else part, size - offset)
                    data = self._read_exact(source, n)
                    whole.update(data)
                    slots.acquire()  # at most in_flight parts in memory besides this one
                    if failed.is_set():
                        slots.release()
                        break
                    futures.append(pool.submit(upload, number, data))
                    del data
                    offset += n
                    number += 1
            except BaseException:
                failed.set()
                raise
            parts = [future.result() for future in futures]
        return whole.hexdigest(), parts

    def _complete(
        self, key: str, upload_id: str, parts: list[dict[str, Any]], size: int, sha: str,
        metadata: Mapping[str, str],
    ) -> UploadResult:
        try:
            answer = self._call(
                "CompleteMultipartUpload", key,
                lambda: self.data.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, IfNoneMatch="*",
                    MultipartUpload={"Parts": parts},
                ),
            )
        except Conflict:
            self._abort(key, upload_id)
            return self._accept_existing(key, size, sha, metadata, parts=len(parts))
        self.set_sha256(key, sha)
        etag = str(answer.get("ETag", "")).strip('"')
        return UploadResult(key, size, sha, etag, len(parts), True)

    def _accept_existing(
        self, key: str, size: int, sha: str, metadata: Mapping[str, str], *, parts: int
    ) -> UploadResult:
        """Another runner wrote ``key`` first: keep its copy only if it is the same flavor."""
        info = self.head(key)
        if (
            info is None
            or info.size_bytes != size
            or info.metadata.get("flavor-id") != metadata.get("flavor-id")
        ):
            raise Conflict(
                f"{key} was written by another runner with different content; "
                "inspect it before archiving this entry again", source=Source.S3,
            )
        recorded = info.metadata.get("sha256")
        if recorded and recorded != sha:
            raise IntegrityError(f"{key} holds sha256 {recorded}, the flavor streams {sha}",
                                 source=Source.S3)
        return UploadResult(key, size, sha, info.etag, parts, False)

    def _abort(self, key: str, upload_id: str) -> None:
        # A stale upload left behind is swept by abort_stale_uploads on the next pass.
        with contextlib.suppress(KarchiveError):
            self._call("AbortMultipartUpload", key, lambda: self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id))

    def abort_stale_uploads(self, key: str, *, started_before: float | None = None) -> int:
        """Abort unfinished multipart uploads of exactly ``key`` (left by a killed run) that
        were initiated before ``started_before`` (unix seconds; None: all of them), so a
        runner working at the same moment keeps its upload."""
        answer = self._call(
            "ListMultipartUploads", key,
            lambda: self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=key),
        )
        aborted = 0
        for upload in answer.get("Uploads", ()):
            initiated = upload.get("Initiated")
            if started_before is not None and initiated is not None \
                    and initiated.timestamp() >= started_before:
                continue
            if upload.get("Key") == key:
                self._abort(key, upload["UploadId"])
                aborted += 1
        return aborted

    def copy(self, source_key: str, key: str, *, metadata: Mapping[str, str],
             storage_class: str) -> ObjectInfo:
        """Server-side copy (multipart past 5 GiB, by boto3's managed copy) with new metadata;
        the source must be readable (warm or thawed). Returns the new object's HEAD."""
        self._call(
            "CopyObject", key,
            lambda: self.client.copy(
                {"Bucket": self.bucket, "Key": source_key}, self.bucket, key,
                ExtraArgs={"Metadata": dict(metadata), "MetadataDirective": "REPLACE",
                           "StorageClass": storage_class},
            ),
        )
        info = self.head(key)
        if info is None:
            raise TransientError(f"copy of {source_key} to {key} is not visible yet",
                                 source=Source.S3)
        return info

    def delete(self, key: str) -> None:
        self._call("DeleteObject", key,
                   lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def request_restore(self, key: str, *, days: int, tier: str) -> str:
        """Ask for a thaw: "requested" (202), "restored" (200: extended) or "in-progress" (409)."""
        try:
            answer = self._call(
                "RestoreObject", key,
                lambda: self.client.restore_object(
                    Bucket=self.bucket, Key=key,
                    RestoreRequest={"Days": days, "GlacierJobParameters": {"Tier": tier}},
                ),
            )
        except InProgress:
            return "in-progress"
        status = int(answer.get("ResponseMetadata", {}).get("HTTPStatusCode", 202))
        return "restored" if status == 200 else "requested"

    def presign_get(self, key: str, expires: int) -> str:
        """A presigned GET (signed here, no request is sent: not a call to count)."""
        try:
            return str(self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires))
        except LOW_LEVEL as exc:
            raise translate(exc, "GetObject (presign)", self.bucket, key) from exc
