"""The daemon's HTTP face: ``/metrics``, ``/healthz`` and ``/readyz`` on one small server.

* ``/metrics`` — the Prometheus text format of the daemon's
  :class:`~controller.runtime.metrics.Metrics`.
* ``/healthz`` — liveness: 200 while the loop's heartbeat is fresh, 503 when it stalled (a
  Kubernetes liveness probe restarts the pod; Docker's HEALTHCHECK marks it unhealthy).
* ``/readyz``  — readiness: 200 once the policy is loaded, Kaltura and S3 answered and the first
  observation is done; 503 with the failing checks otherwise.

Both health answers are JSON (``{"ok": bool, "checks": {...}}``) so an operator sees *why*. The
server knows nothing of the loop: it asks a :class:`HealthSource` (the daemon) at request time.
It runs on a daemon thread (``ThreadingHTTPServer``) so a slow scrape never blocks a cycle.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, Self

from controller.runtime.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)

Checks = dict[str, Any]


class HealthSource(Protocol):
    """What the server asks on each probe; each returns (ok, details for the JSON body)."""

    def liveness(self) -> tuple[bool, Checks]: ...

    def readiness(self) -> tuple[bool, Checks]: ...


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            if path == "/metrics":
                self._send(200, self.server.metrics.exposition(), CONTENT_TYPE)
            elif path == "/healthz":
                self._probe(*self.server.health.liveness())
            elif path == "/readyz":
                self._probe(*self.server.health.readiness())
            else:
                self._send(404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain")
        except Exception as exc:  # a probe must answer, never hang the connection
            log.exception("HTTP %s failed", path)
            self._send(500, f"{type(exc).__name__}\n".encode(), "text/plain")

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def _probe(self, ok: bool, checks: Checks) -> None:
        body = json.dumps({"ok": ok, "checks": checks}, default=str, sort_keys=True).encode()
        self._send(200 if ok else 503, body + b"\n", "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        # Scrapes every 15 s would drown the log; failures are logged above.
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], metrics: Metrics, health: HealthSource) -> None:
        super().__init__(address, _Handler)
        self.metrics = metrics
        self.health = health


class Listener:
    """An HTTP server on a daemon thread of its own: ``start()``, ``url``, ``stop()``, or
    ``with``. The metrics endpoint below and the keep links (``runtime/keep.py``) are two."""

    def __init__(self, server: ThreadingHTTPServer, name: str) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MetricsServer(Listener):
    """``MetricsServer(metrics, health, address, port).start()``; ``.url``; ``.stop()``."""

    def __init__(self, metrics: Metrics, health: HealthSource, address: str = "127.0.0.1",
                 port: int = 0) -> None:
        super().__init__(_Server((address, port), metrics, health), "karchive-http")
