"""Fixtures for the emulator's API tests: the real models behind the real server and client.

Each test gets a fresh ``KalturaBackend`` (conversion delay 60 s on its own clock, so tests move
time with ``backend.clock.advance`` instead of sleeping) served by ``KalturaSandbox`` on port 0,
and one real ``KalturaClient`` (built once: constructing it loads every plugin) pointed at it with
an admin KS from session.start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from KalturaClient import KalturaClient, KalturaConfiguration
from KalturaClient.Plugins.Core import KalturaSessionType

from sandbox.kaltura.content import SeededContent
from sandbox.kaltura.models import KalturaBackend
from sandbox.kaltura.records import FlavorAsset, MediaEntry, Partner, ThumbAsset
from sandbox.kaltura.server import KalturaSandbox

CONVERSION_DELAY = 60.0
BASE_TIME = 1_600_000_000


@dataclass
class Api:
    """The emulator under test: its backend, its server and a client with an admin KS."""

    backend: KalturaBackend
    server: KalturaSandbox
    client: KalturaClient

    def advance(self, seconds: float) -> None:
        self.backend.clock.advance(seconds)
        self.backend.tick()

    def ready(self) -> None:
        """Let every pending conversion finish."""
        self.backend.join_imports()
        self.advance(CONVERSION_DELAY + 1)


@pytest.fixture(scope="session")
def _kclient() -> KalturaClient:
    return KalturaClient(KalturaConfiguration("http://127.0.0.1:9"))


@pytest.fixture
def backend() -> KalturaBackend:
    return KalturaBackend(Partner(conversion_delay=CONVERSION_DELAY))


@pytest.fixture
def api(backend: KalturaBackend, _kclient: KalturaClient) -> Iterator[Api]:
    with KalturaSandbox(backend) as server:
        _kclient.config.serviceUrl = server.url
        _kclient.setKs(None)
        ks = _kclient.session.start(backend.partner.admin_secret, "admin@example.edu",
                                    KalturaSessionType.ADMIN, backend.partner.id)
        _kclient.setKs(ks)
        yield Api(backend, server, _kclient)


def make_entry(backend: KalturaBackend, n: int, *, created_at: int | None = None,
               size: int = 50_000, **fields: Any) -> MediaEntry:
    """Insert a READY entry with a source flavor and a default thumbnail (no API semantics)."""
    pid = backend.partner.id
    entry = MediaEntry(id=f"0_e{n:07d}", partner_id=pid, name=f"Entry {n}",
                       created_at=BASE_TIME + n if created_at is None else created_at,
                       updated_at=BASE_TIME + n, duration=60, ms_duration=60_000, **fields)
    flavor = FlavorAsset(id=f"0_f{n:07d}", entry_id=entry.id, partner_id=pid,
                         content=SeededContent(n, size), size=-(-size // 1024),
                         size_in_bytes=size, tags="source", flavor_params_id=0,
                         is_original=True, width=1280, height=720)
    thumb = ThumbAsset(id=f"0_t{n:07d}", entry_id=entry.id, partner_id=pid,
                       content=SeededContent(n + 7, 900), size=900, tags="default_thumb")
    backend.insert(entry, flavors=[flavor], thumbs=[thumb])
    return entry


class _Files(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = self.files.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def file_server() -> Iterator[Callable[[str, bytes], str]]:
    """A tiny local HTTP server: ``serve("/a.mp4", data)`` returns the URL that serves it."""
    files: dict[str, bytes] = {}
    handler = type("Files", (_Files,), {"files": files})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def serve(path: str, data: bytes) -> str:
        files[path] = data
        return f"http://127.0.0.1:{httpd.server_address[1]}{path}"

    yield serve
    httpd.shutdown()
    httpd.server_close()
