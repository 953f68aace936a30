"""Fixtures for the emulator's API tests: the real models behind the real server and client.

Each test gets a fresh ``KalturaBackend`` (conversion delay 60 s on its own clock, so tests move
time with ``backend.clock.advance`` instead of sleeping) served by ``KalturaSandbox`` on port 0,
and one real ``KalturaClient`` (built once: constructing it loads every plugin) pointed at it with
an admin KS from session.start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer

import pytest
from emu_api import CONVERSION_DELAY, Api, Files
from KalturaClient import KalturaClient, KalturaConfiguration
from KalturaClient.Plugins.Core import KalturaSessionType

from sandbox.kaltura.models import KalturaBackend
from sandbox.kaltura.records import Partner
from sandbox.kaltura.server import KalturaSandbox


@pytest.fixture(scope="session")
def _kclient() -> KalturaClient:
    return KalturaClient(KalturaConfiguration("http://127.0.0.1:9"))


@pytest.fixture
def backend() -> KalturaBackend:
    return KalturaBackend(Partner(conversion_delay=CONVERSION_DELAY))


@pytest.fixture
def api(backend: KalturaBackend, _kclient: KalturaClient) -> Iterator[Api]:
    server = KalturaSandbox(backend).start()
    _kclient.config.serviceUrl = server.url
    _kclient.setKs(None)
    ks = _kclient.session.start(backend.partner.admin_secret, "admin@example.edu",
                                KalturaSessionType.ADMIN, backend.partner.id)
    _kclient.setKs(ks)
    yield Api(backend, server, _kclient)
    # Shutting a server down waits out its poll interval: let that happen beside the next test.
    threading.Thread(target=server.stop, daemon=True).start()


@pytest.fixture
def file_server() -> Iterator[Callable[[str, bytes], str]]:
    """A tiny local HTTP server: ``serve("/a.mp4", data)`` returns the URL that serves it."""
    files: dict[str, bytes] = {}
    handler = type("Files", (Files,), {"files": files})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def serve(path: str, data: bytes) -> str:
        files[path] = data
        return f"http://127.0.0.1:{httpd.server_address[1]}{path}"

    yield serve
    httpd.shutdown()
    httpd.server_close()
