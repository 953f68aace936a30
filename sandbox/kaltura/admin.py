"""The emulator's /admin endpoints: the state tests, the CLI and the demo set from outside.

JSON in, JSON out, no KS: the server's request handler decodes the body and calls
``Admin.handle(method, name, body)``; a ``ValueError``/``TypeError`` becomes 400, a
``KeyError`` (a missing field) 400, a ``LookupError`` (no such endpoint) 404, a
``KalturaError`` 404.

    POST   /admin/play       {"entryId"}                    a viewer's play: plays, lastPlayedAt
    POST   /admin/faults     a fault spec or a list         inject; DELETE clears; GET lists
    GET    /admin/throttle                                  {"service.action": [count, window]}
    POST   /admin/throttle   {"media.delete": [35, 10]}     set (null removes) limits
    GET    /admin/clock, POST {"advance": seconds}          the backend clock
    GET    /admin/partner, POST {setting: value}            partner settings (see PARTNER_FIELDS)
    GET    /admin/stats, DELETE                             calls per service.action
    POST   /admin/snapshot   {"path"}                       the backend's state, atomically
    GET    /admin/users                                     {"count"}
    POST   /admin/users      a user or a list of users      add or change users (by "id")
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, Protocol

from sandbox.kaltura import wire
from sandbox.kaltura.faults import Faults
from sandbox.kaltura.throttle import Throttle

PARTNER_FIELDS: dict[str, Callable[[Any], Any]] = {
    "conversion_delay": float,
    "replacement_requires_approval": bool,
    "download_rate_limit": lambda v: None if v is None else float(v),
    "max_session_expiry": int,
}


class Stats(Protocol):
    def snapshot(self) -> dict[str, int]: ...

    def reset(self) -> None: ...


class Admin:
    """The admin endpoints of one emulator: its backend and the server's faults, limits, counts."""

    def __init__(self, backend: Any, faults: Faults, throttle: Throttle, stats: Stats) -> None:
        self.backend = backend
        self.faults = faults
        self.throttle = throttle
        self.stats = stats
        self._endpoints: dict[str, Callable[[str, Any], Any]] = {
            "play": self._play, "faults": self._faults, "throttle": self._throttle,
            "clock": self._clock, "partner": self._partner, "stats": self._stats,
            "snapshot": self._snapshot, "users": self._users,
        }

    def handle(self, method: str, name: str, body: Any) -> Any:
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            raise LookupError(f"no admin endpoint {method} /admin/{name}")
        return endpoint(method, body)

    @staticmethod
    def _only(method: str, allowed: str, name: str) -> None:
        if method != allowed:
            raise LookupError(f"no admin endpoint {method} /admin/{name}")

    def _play(self, method: str, body: Any) -> Any:
        self._only(method, "POST", "play")
        with self.backend.lock:
            entry = self.backend.record_play(str(body["entryId"]))
            return {"entryId": entry.id, "plays": entry.plays, "views": entry.views,
                    "lastPlayedAt": entry.last_played_at}

    def _faults(self, method: str, body: Any) -> Any:
        if method == "POST":
            for spec in body if isinstance(body, list) else [body]:
                self.faults.add_from_json(spec)
        elif method == "DELETE":
            self.faults.clear()
        return {"pending": self.faults.pending()}

    def _throttle(self, method: str, body: Any) -> Any:
        if method == "POST":
            self.throttle.configure(body)
        return self.throttle.limits()

    def _clock(self, method: str, body: Any) -> Any:
        with self.backend.lock:
            if method == "POST":
                self.backend.clock.advance(float(body.get("advance", 0)))
            return {"now": self.backend.clock.now()}

    def _partner(self, method: str, body: Any) -> Any:
        partner = self.backend.partner
        if method == "POST":
            unknown = set(body) - set(PARTNER_FIELDS)
            if unknown:
                raise ValueError(f"unknown partner settings: {', '.join(sorted(unknown))}")
            with self.backend.lock:
                for key, value in body.items():
                    setattr(partner, key, PARTNER_FIELDS[key](value))
        return {"id": partner.id, **{k: getattr(partner, k) for k in PARTNER_FIELDS}}

    def _stats(self, method: str, body: Any) -> Any:
        if method == "DELETE":
            self.stats.reset()
        return {"calls": self.stats.snapshot()}

    def _snapshot(self, method: str, body: Any) -> Any:
        self._only(method, "POST", "snapshot")
        path = str(body["path"])
        with self.backend.lock:
            data = self.backend.snapshot()
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)  # atomic: a crash never leaves half a snapshot
        return {"path": path}

    def _users(self, method: str, body: Any) -> Any:
        if method == "POST":
            specs = body if isinstance(body, list) else [body]
            if not all(isinstance(spec, dict) for spec in specs):
                raise ValueError("a user is a JSON object with an id")
            with self.backend.lock:  # every user or none: each is checked before any is made
                for spec in specs:
                    self.backend.check_user(spec)
                users = [self.backend.upsert_user(spec) for spec in specs]
            return {"users": [wire.to_json(user) for user in users]}
        with self.backend.lock:
            return {"count": len(self.backend.users)}
