"""The downloads from Kaltura: a resumable HTTP range reader of a download URL (the SourcePort).

The archive reconciler streams an original flavor from ``flavorAsset.getUrl``'s URL straight into
an S3 multipart upload, so this reader is the only thing between Kaltura's bytes and the archive.
Its promise: ``read()`` yields exactly the ``size`` bytes Kaltura said the flavor has, in order, or
raises. A connection cut mid-stream is resumed with ``Range: bytes=N-`` (the download endpoint
serves 206 + Content-Range); a server that announces another length, or a body that ends early
and cannot be resumed, raises — a truncated download is never handed on as complete (the tool we
replace treated partial files as done).

Errors, one table: the answer's HTTP status (``STATUSES``) or, when no answer came, urllib3's
and the socket's failures (``LOW_LEVEL``), each with ``source=kaltura`` (these are Kaltura's
serve URLs). Retries, one level, here: the reader resumes a cut stream up to ``max_resumes``
times without progress, :func:`fetch_small` tries a small file ``SMALL_ATTEMPTS`` times; urllib3
itself retries nothing (``retries=False``), and nothing above retries what this raised.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ProxySchemeUnsupported

from controller.adapters import network
from controller.errors import (
    IntegrityError,
    KarchiveError,
    NotFound,
    PermanentError,
    Source,
    TransientError,
)

_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
# One read takes what the caller asked for (a whole part) up to this: the socket's bytes land
# in the part's buffer once, with no 1 MiB pieces joined after (a copy of every byte, and a
# second part's worth of memory while joining).
_READ_CHUNK = 64 << 20
SMALL_ATTEMPTS = 3  # a thumbnail or caption cut short is fetched again, whole
# The answer's status → the tree (anything else but 200/206 is permanent).
STATUSES: dict[int, type[KarchiveError]] = {
    404: NotFound, 416: IntegrityError, 429: TransientError,
    **{status: TransientError for status in range(500, 600)},
}
# What a request can raise when no answer came: resumed (or tried again), then transient.
LOW_LEVEL = (Urllib3Error, ProxySchemeUnsupported, OSError)

_pool_lock = threading.Lock()
_pools: dict[tuple[float, int], urllib3.PoolManager] = {}


def _pool(timeout: float, maxsize: int = 32) -> urllib3.PoolManager:
    """One connection pool per process (per timeout): connections are reused across copies."""
    with _pool_lock:
        pool = _pools.get((timeout, maxsize))
        if pool is None:
            pool = urllib3.PoolManager(
                maxsize=maxsize,
                block=False,
                retries=False,
                timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout),
            )
            _pools[(timeout, maxsize)] = pool
        return pool


def redact_url(url: str) -> str:
    """A URL fit for logs and errors: no query string (a presigned signature, a KS)."""
    return url.split("?", 1)[0]


class RangeReader:
    """A file-like reader of exactly ``size`` bytes at ``url``, resuming after cuts.

    ``max_resumes`` counts consecutive resumes that made no progress: a flaky link that keeps
    delivering bytes is followed to the end, a dead one gives up with a TransientError.
    """

    def __init__(
        self,
        url: str,
        size: int,
        *,
        timeout: float = 60.0,
        max_resumes: int = 5,
        backoff: float = 0.5,
    ) -> None:
        self.url = url
        self.size = size
        self.position = 0
        self.resumes = 0
        self._timeout = timeout
        self._max_resumes = max_resumes
        self._backoff = backoff
        self._response: Any = None
        self._stalled = 0
        self._closed = False

    # -- the file-like surface -----------------------------------------------------------------

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all the rest for -1); b"" only once all ``self.size`` are read."""
        if self._closed:
            raise ValueError("read from a closed RangeReader")
        remaining = self.size - self.position
        if remaining <= 0:
            self._finish()
            return b""
        want = remaining if size < 0 else min(size, remaining)
        chunks: list[bytes] = []
        got = 0
        while got < want:
            chunk = self._read_some(want - got)
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks) if len(chunks) != 1 else chunks[0]

    def close(self) -> None:
        self._closed = True
        self._drop()

    def __enter__(self) -> RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------

    def _read_some(self, limit: int) -> bytes:
        while True:
            if self._response is None:
                self._open()
            try:
                chunk: bytes = self._response.read(min(limit, _READ_CHUNK))
            except LOW_LEVEL as exc:
                self._resume_after(
                    f"connection broken after {self.position} bytes ({_failure(exc)})"
                )
                continue
            if chunk:
                self.position += len(chunk)
                self._stalled = 0
                if self.position > self.size:
                    raise IntegrityError(
                        f"{redact_url(self.url)} sent more than the {self.size} bytes announced",
                        source=Source.KALTURA,
                    )
                return chunk
            # An empty read before ``size`` bytes: the body ended early (a cut connection).
            self._resume_after(f"body ended at {self.position} of {self.size} bytes")

    def _resume_after(self, why: str) -> None:
        self._drop()
        self._stalled += 1
        if self._stalled > self._max_resumes:
            raise TransientError(
                f"download of {redact_url(self.url)} failed: {why}; gave up after "
                f"{self._max_resumes} resumes without progress", source=Source.KALTURA,
            )
        self.resumes += 1
        time.sleep(min(self._backoff * 2 ** (self._stalled - 1), 10.0))

    def _open(self) -> None:
        headers = {"Range": f"bytes={self.position}-"} if self.position else {}
        try:
            response = _pool(self._timeout).request(
                "GET", self.url, headers=headers, preload_content=False, decode_content=False
            )
        except LOW_LEVEL as exc:
            self._resume_after(f"cannot connect ({_failure(exc)})")
            return
        try:
            self._check(response)
        except BaseException:
            response.release_conn()
            raise
        self._response = response

    def _check(self, response: Any) -> None:
        """The response must be the bytes we asked for, of the length Kaltura announced."""
        status = response.status
        where = redact_url(self.url)
        if status == 416:
            raise IntegrityError(f"{where} is shorter than the {self.size} bytes announced",
                                 source=Source.KALTURA)
        _check_status(status, where, allowed=(200, 206))
        if self.position == 0 and status == 200:
            length = response.headers.get("Content-Length")
            if length is None or int(length) != self.size:
                raise IntegrityError(
                    f"{where} announces {length} bytes, Kaltura's flavor has {self.size}; "
                    "the flavor changed or the download is wrong: archive it again later",
                    source=Source.KALTURA,
                )
            return
        if status == 206:
            found = _CONTENT_RANGE_RE.match(response.headers.get("Content-Range", ""))
            if (
                found is None
                or int(found[1]) != self.position
                or (found[3] != "*" and int(found[3]) != self.size)
            ):
                raise IntegrityError(
                    f"{where} answered range {response.headers.get('Content-Range')!r} to "
                    f"bytes={self.position}- of {self.size}: refusing a mismatched resume",
                    source=Source.KALTURA,
                )
            return
        # A 200 to a Range request: the server ignored it, and a resume cannot be trusted.
        raise PermanentError(f"{where} answered HTTP {status} (expected 206 to a resume)",
                             source=Source.KALTURA)

    def _finish(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._response is not None:
            # A broken connection is simply discarded.
            with contextlib.suppress(Exception):
                self._response.release_conn()
            self._response = None


class HttpSource:
    """The SourcePort adapter: opens download URLs as RangeReaders."""

    def __init__(self, *, timeout: float = 60.0, max_resumes: int = 5) -> None:
        self._timeout = timeout
        self._max_resumes = max_resumes

    def open(self, url: str, size: int) -> RangeReader:
        return RangeReader(url, size, timeout=self._timeout, max_resumes=self._max_resumes)

    def fetch(self, url: str) -> bytes:
        return fetch_small(url, timeout=self._timeout)


def fetch_small(url: str, *, timeout: float = 60.0, limit: int = 64 << 20,
                attempts: int = SMALL_ATTEMPTS, backoff: float = 0.5) -> bytes:
    """Download a small asset (thumbnail, caption, attachment) whole, refusing a short body;
    a transient failure is tried again (this adapter's one retry level)."""
    for attempt in range(1, attempts + 1):
        try:
            return _fetch_once(url, timeout, limit)
        except TransientError:
            if attempt >= attempts:
                raise
            time.sleep(min(backoff * 2 ** (attempt - 1), 10.0))
    raise AssertionError("unreachable: the last attempt returns or raises")


def _fetch_once(url: str, timeout: float, limit: int) -> bytes:
    where = redact_url(url)
    try:
        response = _pool(timeout).request("GET", url, preload_content=False)
    except LOW_LEVEL as exc:
        raise TransientError(f"cannot download {where} ({_failure(exc)})",
                             source=Source.KALTURA) from exc
    try:
        _check_status(response.status, where, allowed=(200,))
        try:
            data = response.read(limit + 1)
        except LOW_LEVEL as exc:
            raise TransientError(f"download of {where} was cut",
                                 source=Source.KALTURA) from exc
        length = response.headers.get("Content-Length")
        if length is not None and int(length) != len(data):
            raise TransientError(f"download of {where} was cut at {len(data)} of {length} bytes",
                                 source=Source.KALTURA)
        if len(data) > limit:
            raise PermanentError(f"{where} is larger than {limit} bytes", source=Source.KALTURA)
        return data
    finally:
        response.release_conn()


def _check_status(status: int, where: str, *, allowed: tuple[int, ...]) -> None:
    """The answer's status by the table; one of ``allowed`` passes, anything else the table
    does not name is permanent."""
    if status in allowed:
        return
    error = STATUSES.get(status, PermanentError)
    what = f"is not there (HTTP {status})" if error is NotFound else f"answered HTTP {status}"
    if status not in STATUSES and allowed == (200, 206):
        what += " (expected 200 or 206)"
    raise error(f"{where} {what}", source=Source.KALTURA)


def _failure(exc: BaseException) -> str:
    """What the network did, in the words of the network table when it names it."""
    failure = network.diagnose(exc)
    return failure.value if failure is not None else type(exc).__name__
