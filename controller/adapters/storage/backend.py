"""The one place the archive's backend is chosen from the policy: an S3 bucket or a directory.

``storage.bucket`` → boto3 (``client.py``), ``S3Archive`` (``writer.py``), the listing inventory
(``inventory.py``) and the S3 lease (``controller/lease.py``). ``storage.url: file:///…`` →
``FileArchive`` (``local.py``), an inventory from a walk of the directory, and a lease held as a
lock file. Callers (observation, apply, the daemon, recreate, export) get a *handle* from
:func:`connect` and pass it back to the functions here; they never look at which backend it is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controller.adapters.storage.local import FileArchive
from policies.costs import Holding, hold
from policies.layout import ENTRY_FOLDER, LEGACY, KeyKind, Marks, parse_key
from policies.observed import ArchiveFacts, RestoreStatus
from policies.schema import StorageSettings
from reconcilers.ports import ArchivePort

log = logging.getLogger(__name__)


def is_directory(storage: StorageSettings) -> bool:
    return storage.url is not None


def connect(storage: StorageSettings) -> Any:
    """The backend handle: a boto3 S3 client, or the :class:`FileArchive` of the directory."""
    if storage.directory is not None:
        return FileArchive(storage.directory, url=storage.url)
    from controller.adapters.storage.s3 import make_s3_client

    return make_s3_client(storage)


def archive(storage: StorageSettings, handle: Any, *, parallel_parts: int = 4,
            metrics: Any = None) -> ArchivePort:
    """The reconcilers' ArchivePort over ``handle``."""
    if isinstance(handle, FileArchive):
        return handle
    from controller.adapters.storage.s3 import make_s3_client
    from controller.adapters.storage.writer import S3Archive

    assert storage.bucket is not None
    return S3Archive(handle, storage.bucket, parallel_parts=parallel_parts, metrics=metrics,
                     data_client=make_s3_client(storage, kind="data"))


def inventory(storage: StorageSettings, handle: Any, *, metrics: Any = None,
              holdings: dict[str, Holding] | None = None) -> dict[str, ArchiveFacts]:
    """entry id → its archive copy of the original flavor (see ``inventory.inventory``);
    ``holdings`` receives the archive's objects and bytes by storage class."""
    if isinstance(handle, FileArchive):
        return directory_inventory(handle, storage.prefix, holdings)
    from controller.adapters.storage.inventory import inventory as bucket_inventory

    assert storage.bucket is not None
    return bucket_inventory(handle, storage.bucket, storage.prefix, metrics=metrics,
                            holdings=holdings)


def restore_via(storage: StorageSettings, asked: str) -> str:
    """Kaltura cannot fetch a file:// URL: a directory archive restores by upload."""
    return "upload" if is_directory(storage) else asked


def directory_inventory(files: FileArchive, prefix: str,
                        holdings: dict[str, Holding] | None = None) -> dict[str, ArchiveFacts]:
    """The directory's originals, both layouts, the newest entry-folder copy per entry."""
    folder: dict[str, tuple[float, ArchiveFacts]] = {}
    legacy: dict[str, ArchiveFacts] = {}
    marks = Marks()
    for key in files.list_keys(""):
        parsed = parse_key(key, prefix)
        if parsed is None or marks.add(parsed):
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
        if parsed.layout == LEGACY:
            legacy[parsed.entry_id] = facts
            continue
        modified = files.path(key).stat().st_mtime
        held = folder.get(parsed.entry_id)
        if held is None or modified > held[0]:
            folder[parsed.entry_id] = (modified, facts)
    found = dict(legacy)
    found.update({entry_id: facts for entry_id, (_, facts) in folder.items()})
    return {entry_id: marks.applied(entry_id, facts) for entry_id, facts in found.items()}


def lease(storage: StorageSettings, handle: Any, key: str, *, duration: float) -> Any:
    """The daemon's lease on this archive: an S3 object, or a lock file in the directory."""
    if isinstance(handle, FileArchive):
        return FileLease(handle.path(key), duration=duration)
    from controller.adapters.storage.lease import Lease

    return Lease(handle, storage.location, key, duration=duration)


class FileLease:
    """The bucket lease's contract (``controller.adapters.storage.lease.Lease``) over a lock file.

    Taking a free lease is ``open(O_CREAT | O_EXCL)``: of two daemons exactly one creates the
    file. Renewing rewrites it (temp + rename) after checking it is still ours. An expired lease
    is taken over by renaming it to a unique tombstone first (a rename of one name succeeds for
    one caller only), then creating the file again with O_EXCL.
    """

    def __init__(self, path: Path, *, duration: float = 60.0, holder: str | None = None,
                 wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        from controller.adapters.storage.lease import new_holder_id

        self.path = path
        self.key = str(path)
        self.duration = duration
        self.holder = holder or new_holder_id()
        self._wall = wall
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._deadline = 0.0
        self._mine = False
        self._released = False

    @property
    def held(self) -> bool:
        with self._lock:
            return self._mine and self._monotonic() < self._deadline

    def acquire(self) -> bool:
        from controller.adapters.storage.lease import holder_is_gone

        with self._lock:
            if self._released:
                return False
            current = self._read()
            if self._mine and current is not None and current.get("holder") == self.holder:
                return self._write_ours()
            self._mine = False
            if current is not None and float(current.get("expires_at", 0)) > self._wall() \
                    and not holder_is_gone(str(current.get("holder", ""))):
                return False
            if current is not None:
                tombstone = self.path.with_name(f"{self.path.name}.expired-{secrets.token_hex(4)}")
                try:
                    os.rename(self.path, tombstone)
                except FileNotFoundError:
                    return False  # another standby took it over first
                with contextlib.suppress(OSError):
                    tombstone.unlink()
            return self._create()

    def release(self) -> None:
        with self._lock:
            self._released = True
            mine, self._mine, self._deadline = self._mine, False, 0.0
            current = self._read()
            if mine and current is not None and current.get("holder") == self.holder:
                with contextlib.suppress(OSError):
                    self.path.unlink()

    def _read(self) -> dict[str, Any] | None:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"holder": "?", "expires_at": 0}  # unreadable: expired, taken over
        return document if isinstance(document, dict) else {"holder": "?", "expires_at": 0}

    def _body(self) -> bytes:
        return json.dumps({"holder": self.holder, "expires_at": self._wall() + self.duration,
                           "duration": self.duration}).encode()

    def _create(self) -> bool:
        started = self._monotonic()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, self._body())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._mine, self._deadline = True, started + self.duration * 0.9
        return True

    def _write_ours(self) -> bool:
        started = self._monotonic()
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}")
        tmp.write_bytes(self._body())
        os.replace(tmp, self.path)
        self._deadline = started + self.duration * 0.9
        return True
