"""Helpers shared by the emulator's API tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from KalturaClient import KalturaClient
from KalturaClient.Plugins.Core import KalturaUploadToken

from sandbox.kaltura.content import SeededContent
from sandbox.kaltura.models import KalturaBackend
from sandbox.kaltura.records import FlavorAsset, MediaEntry, ThumbAsset
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


def make_entry(backend: KalturaBackend, n: int, *, created_at: int | None = None,
               size: int = 50_000, **fields: Any) -> MediaEntry:
    """Insert a READY entry with a source flavor and a default thumbnail (no API semantics)."""
    pid = backend.partner.id
    values: dict[str, Any] = {"name": f"Entry {n}", "updated_at": BASE_TIME + n, "duration": 60,
                              "ms_duration": 60_000, **fields}
    entry = MediaEntry(id=f"0_e{n:07d}", partner_id=pid,
                       created_at=BASE_TIME + n if created_at is None else created_at, **values)
    flavor = FlavorAsset(id=f"0_f{n:07d}", entry_id=entry.id, partner_id=pid,
                         content=SeededContent(n, size), size=-(-size // 1024),
                         size_in_bytes=size, tags="source", flavor_params_id=0,
                         is_original=True, width=1280, height=720)
    thumb = ThumbAsset(id=f"0_t{n:07d}", entry_id=entry.id, partner_id=pid,
                       content=SeededContent(n + 7, 900), size=900, size_in_bytes=900,
                       tags="default_thumb")
    backend.insert(entry, flavors=[flavor], thumbs=[thumb])
    return entry


class Files(BaseHTTPRequestHandler):
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


def named(data: bytes, name: str = "placeholder.mp4") -> io.BytesIO:
    """An in-memory file the client sends as a file part (it needs a name to do so)."""
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def upload(api: Api, data: bytes, name: str = "placeholder.mp4") -> str:
    token = api.client.uploadToken.add(KalturaUploadToken(fileName=name, fileSize=len(data)))
    api.client.uploadToken.upload(token.id, named(data, name), False, True)
    return token.id
