"""Per (service, action) rate limits of the emulator, answered with ACTION_BLOCKED (section 10).

Kaltura counts calls per partner, service and action over a 10 s window; past the limit it
answers HTTP 200 with ``ACTION_BLOCKED`` ``Action "delete" in service "media" is blocked`` and no
Retry-After, so a client must pace itself. The window slides on the backend clock (a test moves
past it with /admin/clock instead of sleeping). A blocked call is not counted: a client that
backs off gets through as soon as the oldest counted call leaves the window.

``PacedWriter`` is the other throttle: the per-connection bandwidth cap of the download endpoint
(the partner's ``download_rate_limit``), so a benchmark can show that parallel streams beat one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sandbox.kaltura.exceptions import KalturaError

DEFAULT_WINDOW = 10.0

# Operators report about 35 deletes per 10 s per partner (reference section 10).
DEFAULT_LIMITS: dict[str, tuple[int, float]] = {
    "media.delete": (35, DEFAULT_WINDOW),
    "baseentry.delete": (35, DEFAULT_WINDOW),
}


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    window: float


def action_blocked(service: str, action: str) -> KalturaError:
    return KalturaError(
        "ACTION_BLOCKED",
        f'Action "{action}" in service "{service}" is blocked',
        {"ACTION_NAME": action, "SERVICE_NAME": service},
    )


class Throttle:
    """Sliding-window counters keyed by lower-cased ``service.action``."""

    def __init__(
        self, now: Callable[[], float], limits: Mapping[str, Sequence[float] | None] | None = None
    ) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._limits: dict[str, Limit] = {}
        self._calls: dict[str, deque[float]] = {}
        self.configure(DEFAULT_LIMITS if limits is None else limits)

    def configure(self, limits: Mapping[str, Sequence[float] | None]) -> None:
        """Set (or with None remove) limits: ``{"media.delete": (35, 10)}``."""
        with self._lock:
            for key, spec in limits.items():
                name = key.lower()
                if spec is None:
                    self._limits.pop(name, None)
                    continue
                count, window = spec
                if int(count) < 0 or float(window) <= 0:
                    raise ValueError(f"limit for {key} needs count >= 0 and window > 0")
                self._limits[name] = Limit(int(count), float(window))

    def limits(self) -> dict[str, list[float]]:
        with self._lock:
            return {k: [v.count, v.window] for k, v in sorted(self._limits.items())}

    def check(self, service: str, action: str) -> None:
        """Count one call, or raise ACTION_BLOCKED when the window is full."""
        key = f"{service}.{action}".lower()
        limit = self._limits.get(key)
        if limit is None:
            return
        now = self._now()
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= now - limit.window:
                calls.popleft()
            if len(calls) >= limit.count:
                raise action_blocked(service.lower(), action)
            calls.append(now)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()


class PacedWriter:
    """A per-connection bandwidth cap: writes so that ``rate`` bytes/s is never exceeded.

    Before each write it sleeps until every byte already written is "due" at the rate, so the
    average over the connection converges to ``rate`` whatever the chunk sizes. ``clock`` and
    ``sleep`` are injectable so the arithmetic is tested without waiting.
    """

    def __init__(
        self,
        write: Callable[[bytes], object],
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._write = write
        self._rate = rate if rate and rate > 0 else None
        self._clock = clock
        self._sleep = sleep
        self._start = clock()
        self.sent = 0

    def chunk_size(self, default: int) -> int:
        """About 20 writes a second when capped, so the pacing is smooth rather than bursty."""
        if self._rate is None:
            return default
        return max(1024, min(default, int(self._rate / 20)))

    def write(self, data: bytes) -> None:
        if self._rate is not None:
            wait = self._start + self.sent / self._rate - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._write(data)
        self.sent += len(data)
