"""The lease: at most one daemon (or ``apply``) acts on an archive at a time — both kinds.

Two daemons pointed at the same bucket (a rolling deploy, a second replica, an operator's laptop)
must never both copy and replace: the lease object ``{prefix}lease.json`` says who acts (one
per shard, ``{prefix}lease-I-of-N.json``, when the daemons run as shards: ``shard_lease.py``).
It holds the holder id and an expiry, and every write to it is conditional, so S3 itself arbitrates
(reference/s3-glacier.md "Conditional writes"):

* take a free lease:    ``PutObject(IfNoneMatch="*")``     — fails 412 if anyone holds it;
* renew our lease:      ``PutObject(IfMatch=<our etag>)``  — fails 412 if it changed hands;
* take over an expired: ``PutObject(IfMatch=<its etag>)``  — of two standbys racing for the same
  expired lease only the first write matches the old etag; the other gets 412;
* release on a clean stop: ``DeleteObject(IfMatch=<our etag>)`` — never deletes another's lease.

Every request goes through the S3 seam (``s3.s3_call``): counted in ``karchive_s3_calls_total``
and translated by its one table, where a lost condition is a ``Conflict`` — so nothing here reads
botocore's codes. No retry of its own: botocore's standard retries are the one level, and a
lease that cannot be renewed simply lapses (below), which is the safe outcome.

Every body is unique (holder, expiry, a serial), so each write gets a new ETag and a stale etag
never matches by accident. Expiry is wall-clock time written by the holder; the standby reads it
with its own clock, so the daemons' clocks must agree to well within ``duration`` (NTP).

Besides the object, the holder keeps a *local* monotonic deadline, set from the moment it sent
the write: when renewals fail (S3 unreachable) :attr:`Lease.held` turns False by itself before any
standby may take over, so the old holder stops acting first.

A folder archive (``storage.url``) has the same contract over a lock file (:class:`FileLease`);
``controller/compose.py`` picks one. :class:`CommandLease` holds either for one ``apply``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from controller.adapters.storage.s3 import Body, S3Metrics, s3_call
from controller.errors import (
    Conflict,
    KarchiveError,
    NotFound,
    PermanentError,
    Source,
    TransientError,
)
from reconcilers.base import Needs

log = logging.getLogger(__name__)

_WHAT = "the lease"
# What the S3 lease calls: read it, write it (conditionally), delete it on a clean stop; and
# list the other shards' leases (``shard_lease.py``).
NEEDS = Needs(s3=frozenset({"s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                            "s3:ListBucket"}))


class LeasePort(Protocol):
    """What the daemon and ``apply`` hold: either lease of this module."""

    duration: float

    @property
    def held(self) -> bool: ...

    def acquire(self) -> bool: ...

    def release(self) -> None: ...

    def read(self) -> LeaseRecord | None: ...


def new_holder_id() -> str:
    """``host-pid-scope-random``: unique per process, readable in the lease object by an
    operator; ``scope`` says which process ids the pid can be compared with."""
    return f"{socket.gethostname()}-{os.getpid()}-{_process_scope()}-{secrets.token_hex(4)}"


def _process_scope() -> str:
    """This machine's boot and this process's PID namespace (Linux): two processes whose pids
    mean the same process only when both agree — not across a reboot, and not across
    containers that share a host name but not a PID namespace. ``x`` where it cannot be read."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")
        namespace = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
        return f"{boot[:12]}.{namespace[namespace.index('[') + 1:namespace.index(']')]}"
    except (OSError, ValueError):
        return "x"


def holder_is_gone(holder: str) -> bool:
    """Whether ``holder`` (a :func:`new_holder_id`) names a process that provably no longer
    runs: same host name, same boot and PID namespace, and no process with its pid — a killed
    ``apply`` or daemon, whose lease need not be waited out, since it cannot act. Any other
    holder (another host or namespace, a live process, an id this cannot read) is taken as
    acting, and its lease is waited out."""
    parts = holder.rsplit("-", 3)
    if len(parts) != 4:
        return False
    host, pid, scope, _ = parts
    if host != socket.gethostname() or scope == "x" or scope != _process_scope() \
            or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists (another user's, say): acting
    return False


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The lease object as read from the bucket."""

    holder: str
    expires_at: float  # unix seconds
    etag: str


class Lease:
    """One daemon's view of the bucket lease. Thread-safe; call :meth:`acquire` on a timer."""

    def __init__(  # noqa: PLR0913 — keyword-only clocks and metrics, injected by tests
        self,
        s3: Any,
        bucket: str,
        key: str,
        *,
        holder: str | None = None,
        duration: float = 60.0,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        metrics: S3Metrics | None = None,
    ) -> None:
        self.s3 = s3
        self._metrics = metrics
        self.bucket = bucket
        self.key = key
        self.holder = holder or new_holder_id()
        self.duration = duration
        self._wall = wall
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._etag: str | None = None
        self._deadline = 0.0  # monotonic; our hold is trusted until then
        self._serial = 0
        self._released = False  # once released (a clean stop), never taken again

    @property
    def held(self) -> bool:
        """Whether this daemon may act now: it wrote the lease and the hold has not lapsed."""
        with self._lock:
            return self._etag is not None and self._monotonic() < self._deadline

    def acquire(self) -> bool:
        """Renew the lease if we hold it, else take it if it is free or expired. Returns whether
        we hold it afterwards. Raises :class:`TransientError` only when S3 cannot be asked; the
        hold then lapses at its local deadline."""
        with self._lock:
            if self._released:
                return False  # a renewal racing the shutdown must not take the lease back
            if self._etag is not None:
                if self._write(if_match=self._etag):
                    return True
                log.warning("lease lost: another daemon holds it now",
                            extra={"holder": self.holder, "lease_key": self.key})
                self._etag = None
            return self._take()

    def release(self) -> None:
        """Give the lease up on a clean stop, so a standby takes over at once, not at expiry."""
        with self._lock:
            self._released = True
            etag, self._etag, self._deadline = self._etag, None, 0.0
            if etag is None:
                return
            try:
                self._call("DeleteObject", lambda: self.s3.delete_object(
                    Bucket=self.bucket, Key=self.key, IfMatch=etag))
                log.info("lease released", extra={"holder": self.holder})
            except (Conflict, NotFound):
                pass  # it changed hands, or is gone already: nothing of ours to delete
            except KarchiveError as exc:
                log.warning("lease release failed (it will expire): %s", exc)

    def read(self) -> LeaseRecord | None:
        """The lease object as it stands, or None when nobody holds it."""
        try:
            response = self._call("GetObject", lambda: self.s3.get_object(
                Bucket=self.bucket, Key=self.key))
            body = Body(response["Body"], self.bucket, self.key).read()
        except NotFound:
            return None
        try:
            document = json.loads(body)
            holder, expires = str(document["holder"]), float(document["expires_at"])
        except (ValueError, KeyError, TypeError):
            # Unreadable: treat as expired long ago, so a conditional takeover repairs it.
            holder, expires = "?", 0.0
        return LeaseRecord(holder=holder, expires_at=expires, etag=response["ETag"])

    # -- internals (called with the lock held) --------------------------------------------------
    def _take(self) -> bool:
        current = self.read()
        if current is None:
            return self._write(if_none_match=True)
        if current.expires_at > self._wall() and not holder_is_gone(current.holder):
            return False  # held by another daemon (or by an earlier run of ours: wait it out)
        log.info("lease expired; taking it over",
                 extra={"holder": self.holder, "previous_holder": current.holder})
        return self._write(if_match=current.etag)

    def _write(self, *, if_match: str | None = None, if_none_match: bool = False) -> bool:
        started = self._monotonic()
        self._serial += 1
        body = json.dumps({
            "holder": self.holder,
            "expires_at": self._wall() + self.duration,
            "duration": self.duration,
            "serial": self._serial,
        }).encode()
        condition: dict[str, str] = {"IfMatch": if_match} if if_match else {}
        if if_none_match:
            condition["IfNoneMatch"] = "*"
        try:
            response = self._call("PutObject", lambda: self.s3.put_object(
                Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json",
                **condition))
        except (Conflict, NotFound):
            # The condition did not hold (412, 409), or the object we matched is gone: another
            # daemon wrote first.
            self._etag, self._deadline = None, 0.0
            return False
        self._etag = response["ETag"]
        # Trust the hold a little less than its written expiry: the write left at ``started``.
        self._deadline = started + self.duration * 0.9
        return True


    def _call(self, operation: str, fn: Callable[[], Any]) -> Any:
        """One request through the S3 seam. Any failure but an answer (a lost condition, a
        missing object) is transient for the lease: its hold lapses by itself."""
        try:
            return s3_call(self._metrics, operation, fn, bucket=self.bucket, key=self.key,
                           purpose=_WHAT)
        except (Conflict, NotFound, TransientError):
            raise
        except KarchiveError as exc:
            raise TransientError(f"{exc}; check the bucket and credentials",
                                 source=Source.S3) from exc


class FileLease:
    """:class:`Lease`'s contract over a lock file, for a folder archive.

    Taking a free lease is ``open(O_CREAT | O_EXCL)``: of two daemons exactly one creates the
    file. Renewing rewrites it (temp + rename) after checking it is still ours. An expired lease
    is taken over by renaming it to a unique tombstone first (a rename of one name succeeds for
    one caller only), then creating the file again with O_EXCL.
    """

    def __init__(self, path: Path, *, duration: float = 60.0, holder: str | None = None,
                 wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
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

    def read(self) -> LeaseRecord | None:
        """The lock file as it stands, or None when nobody holds the lease."""
        current = self._read()
        if current is None:
            return None
        return LeaseRecord(str(current.get("holder", "?")),
                           float(current.get("expires_at", 0) or 0), "")

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


class CommandLease:
    """The daemon's lease, held by one command (``apply``) for as long as it acts: taken once
    (or refused, in one line, while another daemon or apply holds it), renewed on a thread at a
    third of its duration, released on the way out — normal exit, an error, SIGINT or SIGTERM
    alike (``with``). :attr:`lost` turns True if a renewal fails: the command stops at its next
    safe point, as for a signal."""

    def __init__(self, lease: LeasePort, what: str) -> None:
        self.lease = lease
        self.what = what
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> CommandLease:
        try:
            taken = self.lease.acquire()
        except TransientError as exc:
            raise PermanentError(f"cannot take the lease on {self.what} ({exc}); check the "
                                 "storage settings, then apply again") from None
        if not taken:
            raise PermanentError(f"another karchive (a daemon or an apply) holds the lease on "
                                 f"{self.what}{self._holder()}; wait for it to finish or stop "
                                 "it, then apply again")
        self._thread = threading.Thread(target=self._renew, name="lease", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.lease.release()

    @property
    def lost(self) -> bool:
        return not self.lease.held

    def _holder(self) -> str:
        try:
            current = self.lease.read()
        except TransientError:
            return ""
        if current is None:
            return ""
        until = time.strftime("%H:%M:%S", time.gmtime(current.expires_at))
        return f" ({current.holder}, until {until} UTC unless renewed)"

    def _renew(self) -> None:
        while not self._stop.wait(self.lease.duration / 3):
            try:
                self.lease.acquire()
            except TransientError as exc:  # the hold lapses at its local deadline: lost
                log.warning("lease renewal failed: %s", exc)
