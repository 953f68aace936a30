"""The download side of a copy: a resumable HTTP range reader of a Kaltura download URL.

The archive reconciler streams an original flavor from ``flavorAsset.getUrl``'s URL straight into
an S3 multipart upload, so this reader is the only thing between Kaltura's bytes and the archive.
Its promise: ``read()`` yields exactly the ``size`` bytes Kaltura said the flavor has, in order, or
raises. A connection cut mid-stream is resumed with ``Range: bytes=N-`` (the download endpoint
serves 206 + Content-Range); a server that announces another length, or a body that ends early
and cannot be resumed, raises — a truncated download is never handed on as complete (the tool we
replace treated partial files as done).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from policies.errors import IntegrityError, NotFound, PermanentError, TransientError

_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_READ_CHUNK = 1 << 20

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
                chunk = self._response.read(min(limit, _READ_CHUNK))
            except (Urllib3Error, OSError) as exc:
                self._resume_after(
                    f"connection broken after {self.position} bytes ({type(exc).__name__})"
                )
                continue
            if chunk:
                self.position += len(chunk)
                self._stalled = 0
                if self.position > self.size:
                    raise IntegrityError(
                        f"{redact_url(self.url)} sent more than the {self.size} bytes announced"
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
                f"{self._max_resumes} resumes without progress"
            )
        self.resumes += 1
        time.sleep(min(self._backoff * 2 ** (self._stalled - 1), 10.0))

    def _open(self) -> None:
        headers = {"Range": f"bytes={self.position}-"} if self.position else {}
        try:
            response = _pool(self._timeout).request(
                "GET", self.url, headers=headers, preload_content=False, decode_content=False
            )
        except (Urllib3Error, OSError) as exc:
            self._resume_after(f"cannot connect ({type(exc).__name__})")
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
        if status == 404:
            raise NotFound(f"{where} is not there (HTTP 404)")
        if status == 429 or status >= 500:
            raise TransientError(f"{where} answered HTTP {status}")
        if self.position == 0 and status == 200:
            length = response.headers.get("Content-Length")
            if length is None or int(length) != self.size:
                raise IntegrityError(
                    f"{where} announces {length} bytes, Kaltura's flavor has {self.size}; "
                    "the flavor changed or the download is wrong: archive it again later"
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
                    f"bytes={self.position}- of {self.size}: refusing a mismatched resume"
                )
            return
        if status == 416:
            raise IntegrityError(f"{where} is shorter than the {self.size} bytes announced")
        raise PermanentError(f"{where} answered HTTP {status} (expected 200 or 206)")

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


def fetch_small(url: str, *, timeout: float = 60.0, limit: int = 64 << 20) -> bytes:
    """Download a small asset (thumbnail, caption, attachment) whole, refusing a short body."""
    try:
        response = _pool(timeout).request("GET", url, preload_content=False)
    except (Urllib3Error, OSError) as exc:
        raise TransientError(f"cannot download {redact_url(url)} ({type(exc).__name__})") from exc
    try:
        if response.status == 404:
            raise NotFound(f"{redact_url(url)} is not there (HTTP 404)")
        if response.status >= 500:
            raise TransientError(f"{redact_url(url)} answered HTTP {response.status}")
        if response.status != 200:
            raise PermanentError(f"{redact_url(url)} answered HTTP {response.status}")
        try:
            data = response.read(limit + 1)
        except (Urllib3Error, OSError) as exc:
            raise TransientError(f"download of {redact_url(url)} was cut") from exc
        length = response.headers.get("Content-Length")
        if length is not None and int(length) != len(data):
            raise TransientError(
                f"download of {redact_url(url)} was cut at {len(data)} of {length} bytes"
            )
        if len(data) > limit:
            raise PermanentError(f"{redact_url(url)} is larger than {limit} bytes")
        return data
    finally:
        response.release_conn()
