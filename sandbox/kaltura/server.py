"""The emulator's HTTP server and routes (moto's urls.py): the API, downloads and /admin.

    POST|GET /api_v3/service/{service}/action/{action}   one API call (also /api_v3/index.php?
                                                         service=X&action=Y, and key/value pairs
                                                         in the path)
    POST     /api_v3/service/multirequest                 several calls, results referencable
    GET|HEAD /p/{pid}/sp/{pid}00/download/{kind}/{id}/a.{ext}   asset bytes: Range, bandwidth cap
    /admin/play, /admin/faults, /admin/throttle, /admin/clock, /admin/partner, /admin/stats,
    /admin/snapshot, /admin/users                         JSON in and out, no KS (admin.py)

Every API call goes: count it -> injected fault -> (under ``backend.lock``) ``backend.tick()``,
KS check, throttle, handler. The handler's result or error goes to ``wire`` for encoding. The
server speaks HTTP/1.1 keep-alive so KalturaClient's requests session reuses its connection, and
logs nothing per request.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mimetypes
import re
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from sandbox.kaltura import wire
from sandbox.kaltura.admin import Admin
from sandbox.kaltura.exceptions import KalturaError
from sandbox.kaltura.faults import Fault, FaultKind, Faults
from sandbox.kaltura.records import CallContext
from sandbox.kaltura.sessions import Sessions
from sandbox.kaltura.throttle import PacedWriter, Throttle

log = logging.getLogger(__name__)

Handler = Callable[[Any, dict[str, Any], CallContext], Any]

_DOWNLOAD = re.compile(
    r"^/p/(?P<pid>\d+)/sp/\d+/download/(?P<kind>flavor|thumb|caption|attachment)/(?P<id>[^/]+)"
)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 1 << 20


class LostResponse(Exception):  # noqa: N818 - a control-flow signal, not an error
    """An injected gateway fault: the whole HTTP response is replaced (5xx page or empty body)."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(fault.kind.value)
        self.fault = fault


class CallStats:
    """How many calls each service.action received (faulted and blocked ones included)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()

    def count(self, key: str) -> None:
        with self._lock:
            self._calls[key] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._calls.items()))

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()


class KalturaSandbox:
    """The emulator as a server: ``KalturaSandbox(backend).start()``, then talk to ``.url``."""

    def __init__(
        self,
        backend: Any,
        actions: dict[tuple[str, str], Handler] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if actions is None:
            from sandbox.kaltura.responses import ACTIONS  # lazily: models are heavy to import

            actions = ACTIONS
        self.backend = backend
        self.sessions = Sessions(backend.partner, backend.clock.now)
        self.throttle = Throttle(backend.clock.now)
        self.faults = Faults()
        self.stats = CallStats()
        self._admin = Admin(backend, self.faults, self.throttle, self.stats)
        self.sleep: Callable[[float], None] = time.sleep  # delay faults; tests replace it
        self.actions: dict[tuple[str, str], Handler] = {
            **{(s.lower(), a.lower()): h for (s, a), h in actions.items()},
            **self.sessions.actions(),
        }
        self._services = {s for s, _ in self.actions}
        self._host, self._port = host, port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------ lifecycle

    def start(self) -> KalturaSandbox:
        self._httpd = _Server((self._host, self._port), _RequestHandler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="kaltura-sandbox", daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the sandbox is not started: call start() first")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> KalturaSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------- API calls

    def call(self, service: str, action: str, params: dict[str, Any], base_url: str) -> Any:
        """One call as the server makes it: the result, or the KalturaError to send back.

        Raises ``LostResponse`` when an injected gateway fault replaces the whole response.
        """
        service = service.lower()
        self.stats.count(f"{service}.{action.lower()}")
        fault = self.faults.take(service, action)
        if fault is not None:
            if fault.kind is FaultKind.DELAY:
                self.sleep(fault.seconds)  # outside the lock: other callers go on meanwhile
            elif fault.kind is FaultKind.API_ERROR:
                return fault.error()
            else:  # http_500, empty; cut on an API call loses the body the same way
                if fault.run_action:
                    self._execute(service, action, params, base_url)
                raise LostResponse(fault)
        # A detached response profile shapes what the call answers (wire.Shaped).
        return wire.shaped(self._execute(service, action, params, base_url),
                           params.get("responseProfile"))

    def _execute(self, service: str, action: str, params: dict[str, Any], base_url: str) -> Any:
        handler = self.actions.get((service, action.lower()))
        try:
            if handler is None:
                raise self._unknown(service, action)
            with self.backend.lock:
                self.backend.tick()
                ctx = self.sessions.authenticate(service, action.lower(), params, base_url)
                self.throttle.check(service, action)
                return handler(self.backend, params, ctx)
        except KalturaError as err:
            return err
        except Exception:
            # A handler bug: answer as Kaltura does (its code keeps the historic typo, see
            # KalturaErrors::INTERNAL_SERVERL_ERROR) and keep the traceback for the developer.
            log.exception("%s.%s failed", service, action)
            return KalturaError("INTERNAL_SERVERL_ERROR", "Internal server error occurred")

    def _unknown(self, service: str, action: str) -> KalturaError:
        if service not in self._services:
            return KalturaError(
                "SERVICE_DOES_NOT_EXISTS", f'Service "{service}" does not exists',
                {"SRV_NAME": service},
            )
        return KalturaError(
            "ACTION_DOES_NOT_EXISTS",
            f'Action "{action}" does not exists for service "{service}"',
            {"ACTION_NAME": action, "SERVICE_NAME": service},
        )

    def multirequest(self, params: dict[str, Any], base_url: str) -> list[Any]:
        """Sub-calls "0", "1", … in order; ``{N:result…}`` references resolved (N 1-based).

        Faults on service ``multirequest`` hit the request as a whole (an api_error becomes the
        top-level error); faults on a sub-call's service.action hit that sub-call (see faults).
        """
        self.stats.count("multirequest")
        fault = self.faults.take("multirequest", "multirequest")
        if fault is not None and fault.kind is FaultKind.DELAY:
            self.sleep(fault.seconds)
        elif fault is not None and fault.kind is FaultKind.API_ERROR:
            raise fault.error()  # the whole multirequest fails, as a server-side error would
        elif fault is not None:
            raise LostResponse(fault)
        inherited = {k: params[k] for k in ("ks", "partnerId", "clientTag") if k in params}
        results: list[Any] = []
        for key in sorted((k for k in params if k.isdigit()), key=int):
            sub = params[key]
            if not isinstance(sub, dict):
                continue
            sub = {**inherited, **wire.resolve_references(sub, results)}
            service, action = str(sub.pop("service", "")), str(sub.pop("action", ""))
            if not service or not action:
                results.append(KalturaError(
                    "SERVICE_NOT_SPECIFIED" if not service else "ACTION_NOT_SPECIFIED",
                    "Service name was not specified, please specify one" if not service
                    else "Action name was not specified, please specify one",
                ))
                continue
            results.append(self.call(service, action, sub, base_url))
        return results

    # ------------------------------------------------------------------------------ downloads

    def open_download(self, kind: str, asset_id: str) -> tuple[Any, float | None]:
        """The asset's Content and the partner's bandwidth cap (KalturaError when unknown)."""
        with self.backend.lock:
            self.backend.tick()
            if kind == "flavor":
                content = self.backend.flavor_content(asset_id)
            else:
                content = self.backend.asset_content(kind, asset_id)
            return content, self.backend.partner.download_rate_limit

    # ---------------------------------------------------------------------------------- admin

    def admin(self, method: str, name: str, body: Any) -> Any:
        """The /admin endpoints (admin.py): JSON in, JSON out."""
        return self._admin.handle(method, name, body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, sandbox: KalturaSandbox) -> None:
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client killed mid-request (the crash tests' kill -9, a Ctrl-C) resets its connection:
        # that is the client's business, not a server fault worth a traceback on stderr.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def track(self, conn: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(conn)

    def close_connections(self) -> None:
        """Drop idle keep-alive connections so their threads end with the server."""
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client's requests.Session reuses sockets
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    timeout = 300  # idle keep-alive connections are closed after this
    server: _Server
    server_version = "karchive-sandbox"

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: one line per request would drown test output and slow benchmarks."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._route()

    do_POST = do_HEAD = do_DELETE = do_GET  # noqa: N815

    # --------------------------------------------------------------------------------- routing

    def _route(self) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        try:
            if path.startswith("/api_v3"):
                self._api(path, split.query)
            elif path.startswith("/admin/"):
                self._admin(path.removeprefix("/admin/").strip("/"))
            elif (match := _DOWNLOAD.match(path)) is not None:
                self._download(match["kind"], match["id"])
            else:
                self._read_body()
                self._send(404, b"not found\n", "text/plain")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _base_url(self) -> str:
        host = self.headers.get("Host")
        return f"http://{host}" if host else self.server.sandbox.url

    def _send(self, status: int, body: bytes, ctype: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # ------------------------------------------------------------------------------------- API

    def _api(self, path: str, query: str) -> None:
        started = time.perf_counter()
        sandbox = self.server.sandbox
        body = self._read_body()
        fmt = wire.FORMAT_XML
        try:
            segments = [s for s in path.removeprefix("/api_v3").split("/") if s]
            if segments and segments[0] == "index.php":
                segments = segments[1:]
            params = wire.nest(zip(segments[::2], segments[1::2], strict=False))
            wire.merge(params, wire.decode_request(
                query, self.headers.get("Content-Type", ""), body))
            fmt = wire.response_format(params)
            skip_nulls = wire.ignore_null(params)
            service = str(params.pop("service", "")).lower()
            action = str(params.pop("action", ""))
            if service == "multirequest":
                results = sandbox.multirequest(params, self._base_url())
                payload, ctype = wire.encode_multi_response(
                    results, fmt, time.perf_counter() - started, skip_nulls=skip_nulls)
            else:
                if not service:
                    result: Any = KalturaError(
                        "SERVICE_NOT_SPECIFIED",
                        "Service name was not specified, please specify one")
                else:
                    result = sandbox.call(service, action, params, self._base_url())
                payload, ctype = wire.encode_response(result, fmt, time.perf_counter() - started,
                                                      skip_nulls=skip_nulls)
        except LostResponse as lost:
            self._lost(lost.fault)
            return
        except KalturaError as err:  # a body that could not be decoded
            payload, ctype = wire.encode_response(err, fmt, time.perf_counter() - started)
        self._send(200, payload, ctype)

    def _lost(self, fault: Fault) -> None:
        if fault.kind is FaultKind.HTTP_500:
            self._send(fault.status, fault.html_page(), "text/html")
        else:
            self._send(200, b"", "text/xml")

    # ----------------------------------------------------------------------------------- admin

    def _admin(self, name: str) -> None:
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw.strip() else {}
            result = self.server.sandbox.admin(self.command, name, body)
            status, payload = 200, result
        except KeyError as exc:
            status, payload = 400, {"error": f"missing field {exc}"}
        except LookupError as exc:  # an unknown endpoint
            status, payload = 404, {"error": str(exc)}
        except KalturaError as err:
            status, payload = 404, {"error": err.message, "code": err.code}
        except (ValueError, TypeError, AttributeError) as exc:
            status, payload = 400, {"error": str(exc)}
        self._send(status, json.dumps(payload).encode(), "application/json")

    # ------------------------------------------------------------------------------- downloads

    def _download(self, kind: str, asset_id: str) -> None:
        sandbox = self.server.sandbox
        self._read_body()
        sandbox.stats.count(f"download.{kind}")
        fault = sandbox.faults.take("download", kind)
        if fault is not None and fault.kind is FaultKind.DELAY:
            sandbox.sleep(fault.seconds)
        elif fault is not None and fault.kind is FaultKind.HTTP_500:
            self._send(fault.status, fault.html_page(), "text/html")
            return
        elif fault is not None and fault.kind is FaultKind.API_ERROR:
            self._send(404, f"{fault.code}: {fault.message}\n".encode(), "text/plain")
            return
        try:
            content, rate = sandbox.open_download(kind, asset_id)
        except KalturaError as err:
            self._send(404, f"{err.code}: {err.message}\n".encode(), "text/plain")
            return
        size = content.size
        try:
            span = parse_range(self.headers.get("Range"), size)
        except RangeNotSatisfiable:
            self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
            return
        start, end = span if span is not None else (0, size - 1)
        self.send_response(206 if span is not None else 200)
        self.send_header("Content-Type", _content_type(self.path))
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        if span is not None:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        limit = end - start + 1
        cut = fault is not None and fault.kind in (FaultKind.CUT, FaultKind.EMPTY)
        if cut:
            assert fault is not None
            limit = min(limit, fault.after_bytes)
        writer = PacedWriter(self.wfile.write, rate)
        chunk = writer.chunk_size(_CHUNK)
        position = start
        while position < start + limit:
            data = content.read(position, min(chunk, start + limit - position))
            if not data:
                break
            writer.write(data)
            position += len(data)
        if cut:
            # Headers promised more: closing now is a short read the client must detect.
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)


class RangeNotSatisfiable(ValueError):
    """The range starts past the end of the body: HTTP 416."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range -> (start, end) inclusive; None = serve the whole body.

    Malformed and multi-range headers are ignored (RFC 9110 allows serving the whole body).
    """
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or (not match[1] and not match[2]):
        return None
    if not match[1]:  # suffix: the last N bytes
        length = int(match[2])
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return max(0, size - length), size - 1
    start = int(match[1])
    end = int(match[2]) if match[2] else size - 1
    if match[2] and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(header)
    return start, min(end, size - 1)


def _content_type(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "application/octet-stream"
