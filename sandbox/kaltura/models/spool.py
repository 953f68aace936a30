"""Large imported content kept on disk rather than in memory.

A restore through a KalturaUrlResource may carry a multi-gigabyte video; holding it as bytes would
make the emulator's memory grow with every restore. Imports larger than ``SPOOL_THRESHOLD`` are
streamed to a temporary file and served from it with positioned reads; the file is removed when
the content object is no longer referenced (the flavor was deleted and dropped).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import weakref
from typing import IO

from sandbox.kaltura.content import BytesContent

SPOOL_THRESHOLD = 32 << 20
_READ = 1 << 20


class FileContent:
    """Content in a private temporary file; ``read(offset, length)`` like the other kinds."""

    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.size = size
        weakref.finalize(self, _unlink, path)

    def read(self, offset: int, length: int) -> bytes:
        end = min(self.size, offset + length)
        if offset >= end:
            return b""
        with open(self.path, "rb") as handle:
            return os.pread(handle.fileno(), end - offset, offset)


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def read_body(response: IO[bytes]) -> BytesContent | FileContent:
    """Read an HTTP body into memory, or into a temporary file once it passes the threshold."""
    buffer = bytearray()
    while len(buffer) <= SPOOL_THRESHOLD:
        chunk = response.read(_READ)
        if not chunk:
            return BytesContent(bytes(buffer))
        buffer += chunk
    handle = tempfile.NamedTemporaryFile(prefix="karchive-import-", delete=False)  # noqa: SIM115
    try:
        with handle:
            handle.write(buffer)
            size = len(buffer)
            del buffer
            while chunk := response.read(_READ):
                handle.write(chunk)
                size += len(chunk)
    except BaseException:
        _unlink(handle.name)
        raise
    return FileContent(handle.name, size)
