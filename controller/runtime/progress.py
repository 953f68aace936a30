"""Progress of a long observation, on stderr: a bar on a terminal, periodic lines otherwise.

The observer reports how many entries it has seen (and, once the first page answers, how many
there are); ``plan``, the reports and the daemon choose the sink. stdout stays clean for the plan
or the report itself, so ``karchive list > out.tsv`` shows its progress and keeps its file tidy.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO


class ProgressSink(Protocol):
    def total(self, count: int) -> None: ...
    def advance(self, count: int = 1) -> None: ...
    def finish(self) -> None: ...


class NoProgress:
    """Reports nothing (tests, the daemon, ``--quiet``)."""

    def total(self, count: int) -> None:
        return None

    def advance(self, count: int = 1) -> None:
        return None

    def finish(self) -> None:
        return None


class Progress:
    """Counts entries; draws a bar on a TTY (at most 10 times a second), else a line every
    ``every`` seconds so a CI or container log shows the walk is alive without flooding."""

    def __init__(
        self,
        label: str = "observed",
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._label = label
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty() if tty is None else tty
        self._every = every if not self._tty else 0.1
        self._clock = clock
        self._count = 0
        self._total: int | None = None
        self._started = clock()
        self._last = self._started
        self._drawn = False

    @property
    def count(self) -> int:
        return self._count

    def total(self, count: int) -> None:
        self._total = count

    def advance(self, count: int = 1) -> None:
        self._count += count
        now = self._clock()
        if now - self._last >= self._every:
            self._last = now
            self._draw(final=False)

    def finish(self) -> None:
        if self._drawn or not self._tty:
            self._draw(final=True)

    def _line(self) -> str:
        elapsed = self._clock() - self._started
        if self._total:
            share = min(1.0, self._count / self._total)
            return (f"{self._label} {self._count:,} of {self._total:,} entries "
                    f"({share:.0%}, {elapsed:.0f}s)")
        return f"{self._label} {self._count:,} entries ({elapsed:.0f}s)"

    def _draw(self, *, final: bool) -> None:
        if self._tty:
            width = 30
            share = min(1.0, self._count / self._total) if self._total else 0.0
            filled = int(width * share)
            bar = "#" * filled + "-" * (width - filled)
            end = "\n" if final else ""
            self._stream.write(f"\r[{bar}] {self._line()}\x1b[K{end}")
        else:
            self._stream.write(self._line() + "\n")
        self._stream.flush()
        self._drawn = True
