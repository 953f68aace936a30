"""Media bytes of the emulator, generated on the fly or held in memory.

A 10 GB catalogue video must not occupy 10 GB: ``SeededContent`` derives every byte from a seed,
so any range can be produced, and re-produced identically, without storing anything. Uploaded and
URL-imported content is small in tests and is kept as ``BytesContent``. Both answer ``read(offset,
length)`` and carry a ``size`` so the download endpoint can serve HTTP ranges.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

_BLOCK = 1 << 16  # bytes per generated block; each block is a pure function of (seed, index)


class Content(Protocol):
    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes: ...


@dataclass(frozen=True, slots=True)  # one per flavor: a million in a 200k catalogue
class SeededContent:
    """Deterministic pseudo-random bytes: block i is SHAKE-128 of (seed, i)."""

    seed: int
    size: int

    def _block(self, index: int) -> bytes:
        return hashlib.shake_128(f"{self.seed}:{index}".encode()).digest(_BLOCK)

    def read(self, offset: int, length: int) -> bytes:
        end = min(self.size, offset + length)
        if offset >= end:
            return b""
        first, last = offset // _BLOCK, (end - 1) // _BLOCK
        data = b"".join(self._block(i) for i in range(first, last + 1))
        start = offset - first * _BLOCK
        return data[start : start + (end - offset)]


@dataclass(frozen=True)
class BytesContent:
    """Content held in memory (uploads, URL imports, thumbnails, captions)."""

    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]
