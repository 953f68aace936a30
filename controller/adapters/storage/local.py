"""The archive in a local or mounted folder (``storage.url: file:///mnt/nas/karchive``).

The folder's adapter, beside the bucket's (``bucket.py``): :class:`FileArchive` is the
reconcilers' ``ArchivePort``, :class:`FolderStore` the runtime's ``Store`` (inventory by a walk
of the folder, the lease as a lock file). The same keys (``policies.layout``) become paths under
the root, so a NAS holds the same layout and the same manifests as a bucket. What S3 gives for
free is done by hand here:

- atomic writes: bytes go to a temporary file in the same folder, are fsync'd, then renamed
  (overwritable objects) or hard-linked (write-once objects: ``link`` fails if the final name
  exists, the file system's own IfNoneMatch) into place, and the folder is fsync'd;
- write-once: a key that exists with other content is a :class:`Conflict`, never overwritten;
- checksums: the SHA-256 of every object is computed while writing and kept, with the object's
  metadata, in a side file under ``.karchive-meta/`` (outside the layout, so listings and the
  inventory never mistake it for archive content); reads can be verified against it;
- no thaw: a folder is always readable (``request_restore`` answers "restored").

Errors: every ``OSError`` is translated by the one table below (:func:`translate`), with
``source=directory``. No retries: a local file system answers or it does not, and an NFS mount
retries inside the kernel (a "hard" mount) — a second level here would only stack on it.
File operations are not counted as calls: they cost no API request.

Kaltura cannot fetch a ``file://`` URL, so :meth:`presign_get` refuses: restores from a folder
go by chunked upload (:meth:`FolderStore.restore_via`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from controller.adapters.storage.lease import FileLease, LeasePort
from controller.adapters.storage.ledger import Candidate, Copies, Ledger
from controller.errors import (
    Conflict,
    IntegrityError,
    KarchiveError,
    NotFound,
    PermanentError,
    Source,
    TransientError,
    lookup,
)
from policies.costs import Holding, hold
from policies.layout import ENTRY_FOLDER, LEGACY, KeyKind, parse_key
from policies.observed import ArchiveFacts, RestoreStatus
from reconcilers.ports import ArchivePort, ObjectInfo, Readable, UploadResult

META_DIR = ".karchive-meta"
TMP_MARK = ".tmp-"
STORAGE_CLASS = "LOCAL"
_CHUNK = 8 << 20

# OSError → the tree, most specific first (lookup); errnos a second try may not meet again
# (an NFS server's hiccup) are transient whatever their class.
ERRORS: dict[type[BaseException], type[KarchiveError]] = {
    FileNotFoundError: NotFound,
    FileExistsError: Conflict,
    PermissionError: PermanentError,
    OSError: PermanentError,
}
TRANSIENT_ERRNOS = frozenset({errno.EAGAIN, errno.EINTR, errno.ETIMEDOUT, errno.ESTALE})


def translate(exc: OSError, where: str, what: str) -> KarchiveError:
    """An OSError met doing ``what`` ("read", "write") at ``where`` as karchive's error."""
    error = lookup(ERRORS, exc) or PermanentError
    if exc.errno in TRANSIENT_ERRNOS:
        error = TransientError
    if error is NotFound:
        return NotFound(f"{where}: no such file", source=Source.DIRECTORY)
    reason = exc.strerror or type(exc).__name__
    return error(f"cannot {what} {where} ({reason})", source=Source.DIRECTORY)


def fsync_path(path: Path) -> None:
    """fsync a file or a folder, as far as the file system allows (a rename is durable only
    once its folder is: fsync the directory entry too)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class FileArchive:
    """The folder's ArchivePort. ``bucket`` is the ``file://`` URL, for messages."""

    def __init__(self, root: Path | str, *, url: str | None = None) -> None:
        self.root = Path(root)
        self.bucket = url or f"file://{self.root}"
        if not self.root.is_dir():
            raise PermanentError(f"the archive directory {self.root} does not exist or is not a "
                                 "directory; create it (or mount the share) and check storage.url",
                                 source=Source.DIRECTORY)

    # -- paths ---------------------------------------------------------------------------------

    def path(self, key: str) -> Path:
        if not key or key.startswith("/") or ".." in key.split("/") or key.startswith(META_DIR):
            raise PermanentError(f"{key!r} is not an archive key", source=Source.DIRECTORY)
        return self.root / key

    @contextlib.contextmanager
    def _fs(self, key: str, what: str) -> Iterator[None]:
        """The one place this adapter's file-system failures become karchive's errors."""
        try:
            yield
        except OSError as exc:
            raise translate(exc, f"{self.bucket}/{key}", what) from exc

    def _meta_path(self, key: str) -> Path:
        return self.root / META_DIR / f"{key}.json"

    def _read_meta(self, key: str) -> dict[str, Any]:
        try:
            document = json.loads(self._meta_path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return document if isinstance(document, dict) else {}

    def _write_meta(self, key: str, meta: Mapping[str, Any]) -> None:
        target = self._meta_path(key)
        atomic_write(target, json.dumps(dict(meta), sort_keys=True).encode("utf-8"))

    # -- reads ---------------------------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo | None:
        path = self.path(key)
        try:
            with self._fs(key, "read"):
                stat = path.stat()
        except NotFound:
            return None
        meta = self._read_meta(key)
        metadata = {str(k): str(v) for k, v in (meta.get("metadata") or {}).items()}
        if meta.get("sha256"):
            metadata.setdefault("sha256", str(meta["sha256"]))
        return ObjectInfo(
            key=key,
            size_bytes=stat.st_size,
            etag=str(meta.get("sha256") or f"{stat.st_size:x}-{stat.st_mtime_ns:x}"),
            storage_class=STORAGE_CLASS,
            restore=RestoreStatus.READABLE,
            metadata=metadata,
            last_modified=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stat.st_mtime)),
        )

    def get_bytes(self, key: str) -> bytes:
        path = self.path(key)
        with self._fs(key, "read"):
            data = path.read_bytes()
        recorded = self._read_meta(key).get("sha256")
        if recorded and hashlib.sha256(data).hexdigest() != recorded:
            raise IntegrityError(f"{path} does not match the sha256 recorded when it was written",
                                 source=Source.DIRECTORY)
        return data

    def open_read(self, key: str) -> Readable:
        path = self.path(key)
        with self._fs(key, "read"):
            return _File(path.open("rb"), self, key)

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix`` (a key prefix, as in S3), in sorted order."""
        folder, _, _ = prefix.rpartition("/")
        start = self.root / folder if folder else self.root
        if not start.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = sorted(d for d in dirnames if d != META_DIR)
            for name in sorted(filenames):
                if TMP_MARK in name:
                    continue
                key = os.path.relpath(os.path.join(dirpath, name), self.root).replace(os.sep, "/")
                if key.startswith(prefix):
                    yield key

    def get_sha256(self, key: str) -> str | None:
        if self.head(key) is None:
            raise NotFound(f"{self.bucket}/{key}: no such file", source=Source.DIRECTORY)
        recorded = self._read_meta(key).get("sha256")
        return str(recorded) if recorded else None

    def verify(self, key: str) -> str:
        """Hash the stored file again; IntegrityError if it differs from the recorded sha256."""
        path = self.path(key)
        with self._fs(key, "read"):
            found = sha256_file(path)
        recorded = self._read_meta(key).get("sha256")
        if recorded and recorded != found:
            raise IntegrityError(f"{path} hashes to {found}, {recorded} was recorded",
                                 source=Source.DIRECTORY)
        return found

    # -- writes --------------------------------------------------------------------------------

    def set_sha256(self, key: str, sha256: str) -> None:
        meta = self._read_meta(key)
        meta["sha256"] = sha256
        with self._fs(key, "write"):
            self._write_meta(key, meta)

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> str:
        """A small object (manifest, thumbnail, caption): overwritable, atomic, checksummed."""
        sha = hashlib.sha256(data).hexdigest()
        with self._fs(key, "write"):
            self._write_meta(key, {"sha256": sha, "content_type": content_type,
                                   "metadata": dict(metadata or {})})
            atomic_write(self.path(key), data)
        return sha

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
        """Stream exactly ``size`` bytes of ``source`` to ``key``, write-once (see S3Archive)."""
        with self._fs(key, "write"):
            return self._upload(key, source, size, metadata, before_complete)

    def _upload(self, key: str, source: Readable, size: int, metadata: Mapping[str, str],
                before_complete: Callable[[str], None] | None) -> UploadResult:
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}{TMP_MARK}{secrets.token_hex(6)}")
        digest = hashlib.sha256()
        try:
            with tmp.open("xb") as handle:
                written = 0
                while written < size:
                    chunk = source.read(min(_CHUNK, size - written))
                    if not chunk:
                        raise IntegrityError(f"source ended after {written} of {size} bytes")
                    digest.update(chunk)
                    handle.write(chunk)
                    written += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            sha = digest.hexdigest()
            if before_complete is not None:
                before_complete(sha)
            try:
                os.link(tmp, final)  # fails if the key exists: write-once, atomically
            except FileExistsError:
                return self._accept_existing(key, size, sha, metadata)
            self._write_meta(key, {"sha256": sha, "metadata": {**metadata, "sha256": sha}})
            fsync_path(final.parent)
            return UploadResult(key, size, sha, sha, 1, True)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _accept_existing(self, key: str, size: int, sha: str,
                         metadata: Mapping[str, str]) -> UploadResult:
        """The key exists: the same bytes are accepted (its record repaired), others refused."""
        path = self.path(key)
        if path.stat().st_size != size or sha256_file(path) != sha:
            raise Conflict(f"{path} exists with different content; inspect it before archiving "
                           "this entry again", source=Source.DIRECTORY)
        if not self._read_meta(key).get("sha256"):
            self._write_meta(key, {"sha256": sha, "metadata": {**metadata, "sha256": sha}})
        return UploadResult(key, size, sha, sha, 1, False)

    def abort_stale_uploads(self, key: str, *, started_before: float | None = None) -> int:
        """Remove temporary files of ``key`` left by a killed run (older than this run)."""
        final = self.path(key)
        removed = 0
        if not final.parent.is_dir():
            return 0
        for leftover in final.parent.glob(f".{final.name}{TMP_MARK}*"):
            with self._fs(key, "clean up"), contextlib.suppress(FileNotFoundError):
                if started_before is None or leftover.stat().st_mtime < started_before:
                    leftover.unlink()
                    removed += 1
        return removed

    def copy(self, source_key: str, key: str, *, metadata: Mapping[str, str],
             storage_class: str) -> ObjectInfo:
        source = self.path(source_key)
        with self._fs(source_key, "read"):
            handle: IO[bytes] = source.open("rb")
        with handle:
            self.upload_stream(key, handle, source.stat().st_size, metadata=metadata,
                               storage_class=storage_class)
        info = self.head(key)
        assert info is not None
        return info

    def delete(self, key: str) -> None:
        for path in (self.path(key), self._meta_path(key)):
            with self._fs(key, "delete"), contextlib.suppress(FileNotFoundError):
                path.unlink()

    def request_restore(self, key: str, *, days: int, tier: str) -> str:
        if self.head(key) is None:
            raise NotFound(f"{self.bucket}/{key}: no such file", source=Source.DIRECTORY)
        return "restored"  # a directory is always readable: there is nothing to thaw

    def presign_get(self, key: str, expires: int) -> str:
        raise PermanentError("Kaltura cannot fetch a file from a directory archive; restore by "
                             "upload (karchive does this by itself for storage.url)",
                             source=Source.DIRECTORY)


def atomic_write(target: Path, data: bytes) -> None:
    """temp + fsync + rename: readers see the old file or the new one, never a part."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}{TMP_MARK}{secrets.token_hex(6)}")
    try:
        with tmp.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_path(target.parent)


class _File:
    """A stored file opened for reading (a ``Readable``), its failures translated."""

    def __init__(self, handle: IO[bytes], archive: FileArchive, key: str) -> None:
        self._handle = handle
        self._archive = archive
        self._key = key

    def read(self, size: int = -1) -> bytes:
        with self._archive._fs(self._key, "read"):
            return self._handle.read(size)

    def close(self) -> None:
        self._handle.close()


def directory_inventory(files: FileArchive, prefix: str,
                        holdings: dict[str, Holding] | None = None) -> Copies:
    """The directory's originals, both layouts, the newest entry-folder copy per entry, and
    every entry's owner-notice markers, settled on disk (``ledger.py``)."""
    ledger = Ledger()
    try:
        for key in files.list_keys(""):
            parsed = parse_key(key, prefix)
            if parsed is None or ledger.marker(parsed):
                continue
            info = files.head(key)
            if info is None:
                continue  # removed while listing
            if holdings is not None:
                hold(holdings, info.storage_class, info.size_bytes)
            if parsed.kind is not KeyKind.ORIGINAL:
                continue
            facts = ArchiveFacts(
                key=key, size_bytes=info.size_bytes, storage_class=info.storage_class,
                restore=RestoreStatus.READABLE, layout=parsed.layout, etag=info.etag,
                flavor_id=parsed.asset_id if parsed.layout == ENTRY_FOLDER else
                info.metadata.get("flavor-id"),
                sha256=info.metadata.get("sha256"),
            )
            modified = None if parsed.layout == LEGACY else files.path(key).stat().st_mtime
            ledger.original(parsed.entry_id, facts, modified)
        return ledger.settle(_newest_file)
    except BaseException:
        ledger.close()
        raise


def _newest_file(entry_id: str, candidates: Sequence[Candidate]) -> ArchiveFacts:
    """The most recently written entry-folder original (the first listed of equal times)."""
    newest = candidates[0]
    for candidate in candidates[1:]:
        if (candidate[0] or 0.0) > (newest[0] or 0.0):
            newest = candidate
    return newest[1]


class FolderStore:
    """The folder as the runtime's ``Store``: a walk for the inventory, a lock file for the
    lease, :class:`FileArchive` for the reconcilers. Nothing in it is ever cold."""

    source = Source.DIRECTORY

    def __init__(self, root: Path, url: str | None = None) -> None:
        self.files = FileArchive(root, url=url)
        self.location = self.files.bucket

    def inventory(self, prefix: str, holdings: dict[str, Holding] | None = None) -> Copies:
        with self.files._fs(prefix, "list"):
            return directory_inventory(self.files, prefix, holdings)

    def refresh(self, facts: ArchiveFacts) -> ArchiveFacts:
        return facts  # always readable: there is no restore status to read again

    def archive(self, *, parallel_parts: int = 4, part_memory: int | None = None
                ) -> ArchivePort:
        return self.files  # writes stream 8 MiB at a time: no part buffers to bound

    def lease(self, key: str, *, duration: float) -> LeasePort:
        return FileLease(self.files.path(key), duration=duration)

    def lease_names(self, prefix: str) -> list[str]:
        """The lock files' names under ``prefix`` (a lease file's tombstones are not leases)."""
        folder = self.files.path(f"{prefix}lease.json").parent
        with self.files._fs(prefix, "list"):
            if not folder.is_dir():
                return []
            return sorted(p.name for p in folder.glob("lease*.json") if p.is_file())

    def restore_via(self, asked: str) -> str:
        return "upload"  # Kaltura cannot fetch a file:// URL
