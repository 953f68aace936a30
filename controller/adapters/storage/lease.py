"""The bucket lease: at most one daemon (or ``apply``) acts on a bucket at a time.

Two daemons pointed at the same bucket (a rolling deploy, a second replica, an operator's laptop)
must never both copy and replace: the lease object ``{prefix}lease.json`` says who acts. It holds
the holder id and an expiry, and every write to it is conditional, so S3 itself arbitrates
(reference/s3-glacier.md "Conditional writes"):

* take a free lease:    ``PutObject(IfNoneMatch="*")``     — fails 412 if anyone holds it;
* renew our lease:      ``PutObject(IfMatch=<our etag>)``  — fails 412 if it changed hands;
* take over an expired: ``PutObject(IfMatch=<its etag>)``  — of two standbys racing for the same
  expired lease only the first write matches the old etag; the other gets 412;
* release on a clean stop: ``DeleteObject(IfMatch=<our etag>)`` — never deletes another's lease.

Every body is unique (holder, expiry, a serial), so each write gets a new ETag and a stale etag
never matches by accident. Expiry is wall-clock time written by the holder; the standby reads it
with its own clock, so the daemons' clocks must agree to well within ``duration`` (NTP).

Besides the object, the holder keeps a *local* monotonic deadline, set from the moment it sent
the write: when renewals fail (S3 unreachable) :attr:`Lease.held` turns False by itself before any
standby may take over, so the old holder stops acting first.
"""

from __future__ import annotations

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
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from controller.adapters.storage.s3 import translate
from controller.errors import PermanentError, TransientError

log = logging.getLogger(__name__)

LEASE_NAME = "lease.json"  # {prefix}lease.json: one actor per archive, a daemon or an apply

# 412: the condition did not hold. 409 ConditionalRequestConflict: a concurrent conditional write
# to the same key is in flight (AWS S3 conditional-writes docs); both mean "someone else wrote".
_LOST = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


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

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        *,
        holder: str | None = None,
        duration: float = 60.0,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.s3 = s3
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
                self.s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)
                log.info("lease released", extra={"holder": self.holder})
            except ClientError as exc:
                if _code(exc) not in _LOST | _MISSING:
                    log.warning("lease release failed (it will expire): %s", _code(exc))
            except BotoCoreError as exc:
                log.warning("lease release failed (it will expire): %s", type(exc).__name__)

    def read(self) -> LeaseRecord | None:
        """The lease object as it stands, or None when nobody holds it."""
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=self.key)
            body = response["Body"].read()
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise TransientError(f"cannot read the lease s3://{self.bucket}/{self.key} "
                                 f"({_code(exc)}); check the bucket and credentials") from exc
        except BotoCoreError as exc:
            raise _unreachable(exc, "GetObject", self.bucket, self.key) from exc
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
            response = self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=body,
                                          ContentType="application/json", **condition)
        except ClientError as exc:
            if _code(exc) in _LOST | _MISSING:
                self._etag, self._deadline = None, 0.0
                return False
            raise TransientError(f"cannot write the lease s3://{self.bucket}/{self.key} "
                                 f"({_code(exc)}); check the bucket and credentials") from exc
        except BotoCoreError as exc:
            raise _unreachable(exc, "PutObject", self.bucket, self.key) from exc
        self._etag = response["ETag"]
        # Trust the hold a little less than its written expiry: the write left at ``started``.
        self._deadline = started + self.duration * 0.9
        return True


def _unreachable(exc: BotoCoreError, operation: str, bucket: str, key: str) -> TransientError:
    """S3 could not be asked about the lease: the storage seam's one line, always transient
    (the hold lapses by itself at its local deadline)."""
    error = translate(exc, f"{operation} (the lease)", bucket, key)
    return error if isinstance(error, TransientError) else TransientError(str(error))


class CommandLease:
    """The daemon's lease, held by one command (``apply``) for as long as it acts: taken once
    (or refused, in one line, while another daemon or apply holds it), renewed on a thread at a
    third of its duration, released on the way out — normal exit, an error, SIGINT or SIGTERM
    alike (``with``). :attr:`lost` turns True if a renewal fails: the command stops at its next
    safe point, as for a signal."""

    def __init__(self, lease: Any, what: str) -> None:
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
        reader = getattr(self.lease, "read", None)
        try:
            current = reader() if reader is not None else None
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


def _code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get(
        "HTTPStatusCode", "?"))
