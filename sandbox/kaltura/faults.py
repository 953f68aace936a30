"""Injected faults: the next N calls of a service.action go wrong the way production goes wrong.

Kinds (``FaultKind``):
    api_error  an API error in the normal XML/JSON shape (default INTERNAL_SERVER_ERROR)
    http_500   an HTML 5xx page from a "gateway" (status 502 by default); KalturaClient: -8 / -2
    empty      HTTP 200 with an empty body; KalturaClient: -2
    delay      sleep ``seconds`` (outside the backend lock), then answer normally
    cut        downloads only: send the headers and ``after_bytes`` bytes, then close

Downloads are addressed as service ``download`` with the asset kind as action (``flavor``,
``thumb``, ``caption``, ``attachment``). Inside a multirequest each sub-call consumes the faults of
its own service.action: ``api_error`` fills that sub-call's slot, ``delay`` delays it, and
``http_500`` / ``empty`` lose the whole response (a gateway cannot fail one slot of a body it
never parsed). Unless ``run_action`` is set the faulted call is not executed; with it the action
runs and only its response is lost — the case a client must handle by checking before it retries.
Service and action ``*`` match any call.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from sandbox.kaltura.exceptions import KalturaError


class FaultKind(StrEnum):
    API_ERROR = "api_error"
    HTTP_500 = "http_500"
    EMPTY = "empty"
    DELAY = "delay"
    CUT = "cut"


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    code: str = "INTERNAL_SERVER_ERROR"
    message: str = "Internal server error occurred"
    seconds: float = 0.0
    after_bytes: int = 0
    status: int = 502
    run_action: bool = False

    def error(self) -> KalturaError:
        return KalturaError(self.code, self.message)

    def html_page(self) -> bytes:
        reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
                  504: "Gateway Timeout"}.get(self.status, "Server Error")
        return (
            f"<html>\r\n<head><title>{self.status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{self.status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
        ).encode()


class Faults:
    """Pending faults per lower-cased ``service.action``, consumed in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, list[list[Any]]] = {}  # key -> [[fault, remaining], ...]

    def add(self, service: str, action: str, kind: str | FaultKind, count: int = 1,
            **options: Any) -> Fault:
        """Make the next ``count`` calls of service.action fail with ``kind``."""
        fault = Fault(kind=FaultKind(kind), **{k: v for k, v in options.items() if v is not None})
        if fault.kind is FaultKind.HTTP_500 and not 500 <= fault.status <= 599:
            raise ValueError(f"http_500 needs a 5xx status, not {fault.status}")
        if count < 1:
            raise ValueError("count must be at least 1")
        key = f"{service}.{action}".lower()
        with self._lock:
            self._pending.setdefault(key, []).append([fault, int(count)])
        return fault

    def add_from_json(self, spec: dict[str, Any]) -> Fault:
        """The body of ``POST /admin/faults``."""
        known = {"code", "message", "seconds", "after_bytes", "status", "run_action"}
        unknown = set(spec) - known - {"service", "action", "kind", "count"}
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        options = {k: spec[k] for k in known if k in spec}
        for name, cast in (("seconds", float), ("after_bytes", int), ("status", int)):
            if name in options:
                options[name] = cast(options[name])
        return self.add(str(spec["service"]), str(spec["action"]), str(spec["kind"]),
                        int(spec.get("count", 1)), **options)

    def take(self, service: str, action: str) -> Fault | None:
        """Consume and return the next fault for this call, if any."""
        with self._lock:
            if not self._pending:  # the common case: keep it one dict check
                return None
            for key in (f"{service}.{action}".lower(), f"{service.lower()}.*", "*.*"):
                queue = self._pending.get(key)
                if not queue:
                    continue
                entry = queue[0]
                entry[1] -= 1
                if entry[1] <= 0:
                    queue.pop(0)
                    if not queue:
                        del self._pending[key]
                return entry[0]
        return None

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"target": key, "count": remaining, **asdict(fault)}
                for key, queue in sorted(self._pending.items())
                for fault, remaining in queue
            ]
