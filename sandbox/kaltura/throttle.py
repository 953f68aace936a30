"""Per (service, action) rate limits of the emulator: ACTION_BLOCKED (sections 10 and 11.7).

Kaltura counts calls per partner, service and action in a fixed window that the first call opens:
``KalturaResponseCacher::rateLimit`` does ``cache->add(key, 0, expiry)`` (the expiry is set once,
by the call that creates the key) and then ``cache->increment(key)`` *before* it compares the
counter with the rule's limit, so a refused call is counted too, yet never prolongs the block:
when the key expires (``_expiry``, 10 s by default, after the window's first call) a fresh window
opens with the full allowance (kaltura/server api_v3/lib/KalturaResponseCacher.php ``rateLimit``;
reference section 11.7). Past the limit the answer is HTTP 200 with ``ACTION_BLOCKED``
``Action "delete" in service "media" is blocked`` and no Retry-After, so a client must pace
itself: one that retries in a tight loop spends the window's allowance on refusals. The check
runs after the KS is validated (``KalturaDispatcher::dispatch`` calls ``initKsPartnerUser``
first), so a call with a bad KS is not counted. Windows run on the backend clock (a test moves
past one with /admin/clock instead of sleeping).

``PacedWriter`` is the other throttle: the per-connection bandwidth cap of the download endpoint
(the partner's ``download_rate_limit``), so a benchmark can show that parallel streams beat one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sandbox.kaltura.exceptions import KalturaError

DEFAULT_WINDOW = 10.0  # the rule's ``_expiry`` when it gives none

# Operators report about 35 deletes per 10 s per partner (reference section 10); the SaaS values
# are not in the server's source (they live in the deployment's api_rate_limit map).
DEFAULT_LIMITS: dict[str, tuple[int, float]] = {
    "media.delete": (35, DEFAULT_WINDOW),
    "baseentry.delete": (35, DEFAULT_WINDOW),
}


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    window: float


@dataclass(slots=True)
class Window:
    """One open window: when its first call came, and every call since (refused ones too)."""

    opened: float
    calls: int = 0


def action_blocked(service: str, action: str) -> KalturaError:
    return KalturaError(
        "ACTION_BLOCKED",
        f'Action "{action}" in service "{service}" is blocked',
        {"ACTION_NAME": action, "SERVICE_NAME": service},
    )


class Throttle:
    """Fixed-window counters keyed by lower-cased ``service.action``."""

    def __init__(
        self, now: Callable[[], float], limits: Mapping[str, Sequence[float] | None] | None = None
    ) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._limits: dict[str, Limit] = {}
        self._windows: dict[str, Window] = {}
        self.configure(DEFAULT_LIMITS if limits is None else limits)

    def configure(self, limits: Mapping[str, Sequence[float] | None]) -> None:
        """Set (or with None remove) limits: ``{"media.delete": (35, 10)}`` = 35 per 10 s window.

        A window already open keeps its start; the new count applies to it at once.
        """
        parsed: dict[str, Limit | None] = {}
        for key, spec in limits.items():
            name = key.lower()
            if spec is None:
                parsed[name] = None
                continue
            try:
                count, window = spec
                limit = Limit(int(count), float(window))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"limit for {key} must be [count, window seconds]") from exc
            if limit.count < 0 or limit.window <= 0:
                raise ValueError(f"limit for {key} needs count >= 0 and window > 0")
            parsed[name] = limit
        with self._lock:  # all or nothing: one bad limit changes none
            for name, maybe in parsed.items():
                if maybe is None:
                    self._limits.pop(name, None)
                    self._windows.pop(name, None)
                else:
                    self._limits[name] = maybe

    def limits(self) -> dict[str, list[float]]:
        with self._lock:
            return {k: [v.count, v.window] for k, v in sorted(self._limits.items())}

    def check(self, service: str, action: str) -> None:
        """Count one call in its window; raise ACTION_BLOCKED once the count passes the limit."""
        key = f"{service}.{action}".lower()
        limit = self._limits.get(key)
        if limit is None:
            return
        now = self._now()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now >= window.opened + limit.window:
                window = self._windows[key] = Window(now)
            window.calls += 1
            if window.calls > limit.count:
                raise action_blocked(service.lower(), action)

    def windows(self) -> dict[str, tuple[float, int]]:
        """The open windows: ``{"media.delete": (opened at, calls counted)}`` (for tests)."""
        with self._lock:
            return {k: (w.opened, w.calls) for k, w in sorted(self._windows.items())}

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()


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
