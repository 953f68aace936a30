"""The adapters' network table: failures told apart in one place, and a word while we wait.

Every adapter to the outside world (Kaltura: ``kaltura/session.py`` and ``kaltura/download.py``;
S3: ``storage/s3.py``; LDAP: ``ldap.py``) meets the same few ways a network fails, each wrapped
differently by its library (requests in KalturaClient, urllib3 in botocore and the downloads,
ldap3's own socket errors). :func:`diagnose` names the failure from the exception's types — one
table, the chain of causes walked once — and :func:`error` turns it into the one line a user
reads (:func:`describe`: the service, the endpoint, the call, and what to check) as a
:class:`NetworkError` carrying the adapter's source. The adapters raise it once their own
retries are spent; nothing above them retries it again (one retry level: a hung server costs
attempts × timeout once, not a product of every layer's attempts).

:class:`Watch` says, on the ``karchive.network`` log, when a call has had no answer for a few
seconds and when it will give up, so a plan waiting on a silent server is never silent itself.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from enum import StrEnum

import botocore.exceptions as boto
import requests.exceptions as req
import urllib3.exceptions as u3

from controller.errors import NetworkError, Source

log = logging.getLogger("karchive.network")

CONNECT_TIMEOUT = 5.0  # seconds to open a TCP connection: a healthy one takes milliseconds
_UNREACHABLE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN,
                          errno.ENETDOWN})
# ldap3 keeps no exception chain: its socket errors carry the errno only in their text,
# "socket connection error while opening: [Errno 111] Connection refused" (ldap3 strategy/base.py).
_ERRNO_IN_TEXT = re.compile(r"\[Errno (-?\d+)\]")


class Failure(StrEnum):
    NO_DNS = "the host name does not resolve"
    REFUSED = "refused the connection"
    UNREACHABLE = "is unreachable (no route to the host)"
    CONNECT_TIMEOUT = "did not accept a connection in time"
    READ_TIMEOUT = "accepted the connection but did not answer in time"
    TLS = "failed the TLS handshake"
    RESET = "closed the connection mid-answer"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and what each library stored inside (urllib3's ``reason``,
    botocore's ``kwargs['error']``, KalturaClientException's ``message``), once each."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [current.__cause__, current.__context__, getattr(current, "reason", None),
                 getattr(current, "message", None),
                 (getattr(current, "kwargs", None) or {}).get("error")]
        inner += list(getattr(current, "args", ()))
        todo += [e for e in inner if isinstance(e, BaseException)]


# The timeouts of the libraries under the adapters (KalturaClient's requests, botocore, the
# downloads' urllib3), by kind.
CONNECT_TIMEOUTS = (req.ConnectTimeout, boto.ConnectTimeoutError, u3.ConnectTimeoutError)
READ_TIMEOUTS = (req.ReadTimeout, boto.ReadTimeoutError, u3.ReadTimeoutError, socket.timeout)


def diagnose(exc: BaseException) -> Failure | None:  # noqa: C901 — a flat ladder of failure kinds, most specific first
    """Which network failure ``exc`` is, or None when it is not one (an answer, a bug)."""
    found = list(_chain(exc))
    # The lowest-level cause names the failure best: look for it first.
    for error in found:
        if isinstance(error, socket.gaierror | u3.NameResolutionError):
            return Failure.NO_DNS
        if isinstance(error, ConnectionRefusedError):
            return Failure.REFUSED
        if isinstance(error, OSError) and error.errno in _UNREACHABLE:
            return Failure.UNREACHABLE
        if isinstance(error, ssl.SSLError):
            return Failure.TLS
    for error in found:
        match = _ERRNO_IN_TEXT.search(str(error))
        if match and int(match.group(1)) == errno.ECONNREFUSED:
            return Failure.REFUSED
        if match and int(match.group(1)) in _UNREACHABLE:
            return Failure.UNREACHABLE
    for error in found:
        # urllib3's NewConnectionError subclasses ConnectTimeoutError: a refusal that reached
        # here without its OSError is still no timeout.
        if isinstance(error, CONNECT_TIMEOUTS) and not isinstance(error, u3.NewConnectionError):
            return Failure.CONNECT_TIMEOUT
    for error in found:
        if isinstance(error, READ_TIMEOUTS):
            return Failure.READ_TIMEOUT
    for error in found:
        if isinstance(error, ConnectionError | u3.ProtocolError | u3.NewConnectionError):
            return Failure.RESET
    return None


# What each failure tells the user to check; {where} "Kaltura at https://…", {call} the call
# (with ", 3 tries"), {setting} the policy field that names the endpoint.
_ADVICE = {
    Failure.NO_DNS: "{where}: the host name does not resolve ({call}); check the host name in "
                    "{setting} and this machine's DNS",
    Failure.REFUSED: "{where} refused the connection ({call}); check the host and port in "
                     "{setting} and that the service is running",
    Failure.UNREACHABLE: "{where} is unreachable, no route to the host ({call}); check "
                         "{setting}, this machine's network and routes, and any firewall or "
                         "proxy on the way",
    Failure.CONNECT_TIMEOUT: "{where} did not accept a connection within {connect:g} s "
                             "({call}); check {setting} and any firewall that drops "
                             "connections on the way",
    Failure.READ_TIMEOUT: "{where} accepted the connection but did not answer {call}; check "
                          "that {setting} points at the service itself and that it is up",
    Failure.TLS: "{where}: the TLS handshake failed ({call}); check the scheme and host in "
                 "{setting} and the certificate the server presents",
    Failure.RESET: "{where} closed the connection mid-answer ({call}); a proxy or load "
                   "balancer in between may be cutting connections",
}


def describe(service: str, endpoint: str, call: str, failure: Failure, *, setting: str,
             read_timeout: float | None = None, attempts: int | None = None) -> str:
    """One line: what failed, where, during which call, and what to check."""
    if failure is Failure.READ_TIMEOUT and read_timeout:
        call = f"{call} within {read_timeout:g} s"
    if attempts and attempts > 1:
        call = f"{call}, {attempts} tries" if failure is not Failure.READ_TIMEOUT else \
            f"{call} ({attempts} tries)"
    return _ADVICE[failure].format(where=f"{service} at {endpoint}", call=call,
                                   setting=setting, connect=CONNECT_TIMEOUT)


def error(service: str, endpoint: str, call: str, failure: Failure, *, setting: str,  # noqa: PLR0913 — keyword-only wording fields
          source: Source, read_timeout: float | None = None,
          attempts: int | None = None) -> NetworkError:
    """The :class:`NetworkError` an adapter raises for ``failure``, worded by :func:`describe`."""
    return NetworkError(describe(service, endpoint, call, failure, setting=setting,
                                 read_timeout=read_timeout, attempts=attempts), source=source)


class Watch:
    """Logs a line when a call has waited ``first`` seconds, then every ``every`` seconds, until
    it returns. One background thread serves every call of the process."""

    def __init__(self, *, first: float = 5.0, every: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.first = first
        self.every = every
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: dict[int, tuple[str, float, float, float | None]] = {}  # what, start,
        # next report, limit
        self._serial = 0
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def call(self, what: str, limit: float | None) -> Iterator[None]:
        """``what``: "Kaltura at https://… (media.list)"; ``limit``: its read timeout (s), when
        one number says when it gives up."""
        now = self._clock()
        with self._lock:
            self._serial += 1
            token = self._serial
            self._waiting[token] = (what, now, now + self.first, limit)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="karchive-watch",
                                                daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._waiting.pop(token, None)

    def _run(self) -> None:
        while True:
            time.sleep(0.5)
            now = self._clock()
            with self._lock:
                due = [(token, entry) for token, entry in self._waiting.items()
                       if entry[2] <= now]
                for token, (what, start, _next, limit) in due:
                    self._waiting[token] = (what, start, now + self.every, limit)
            for _token, (what, start, _next, limit) in due:
                tail = f" (times out after {limit:g} s)" if limit else ""
                log.warning("waiting for %s: no answer for %.0f s%s", what, now - start, tail)


watch = Watch()  # the process's one watcher; the adapters share it
