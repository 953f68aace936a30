"""Fixtures for the emulator's transport tests: the real server over a small stand-in model.

The transport (wire, sessions, throttle, faults, downloads) is tested on its own here, with a
tiny action table registered under real service and action names, so the real KalturaClient can
call it over loopback HTTP. The real models are exercised by tests/sandbox/api/ and by
test_wire.py's checks against ``responses.ACTIONS``.

One server and one client serve the whole session (building a KalturaClient loads every plugin,
about 0.4 s); ``emu`` resets faults, limits, counters, partner settings and data before each test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from KalturaClient import KalturaClient, KalturaConfiguration
from KalturaClient.Plugins.Core import KalturaSessionType

from sandbox.kaltura.content import SeededContent
from sandbox.kaltura.exceptions import KalturaError, entry_not_found
from sandbox.kaltura.records import (
    CallContext,
    FlavorAsset,
    ListResponse,
    MediaEntry,
    Partner,
    UploadToken,
)
from sandbox.kaltura.server import KalturaSandbox
from sandbox.kaltura.throttle import DEFAULT_LIMITS

FLAVOR_SIZE = 3 * (1 << 20) + 12345  # more than one 1 MiB chunk, not a multiple of anything


class StubClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class StubBackend:
    """Just enough state for the transport: entries, one flavor each, upload tokens, plays."""

    def __init__(self) -> None:
        self.partner = Partner()
        self.clock = StubClock()
        self.lock = threading.RLock()
        self.ticks = 0
        self.reset()

    def reset(self) -> None:
        self.entries: dict[str, MediaEntry] = {}
        self.flavors: dict[str, FlavorAsset] = {}
        self.tokens: dict[str, UploadToken] = {}
        for i in range(3):
            entry_id = f"0_entry{i:03d}"
            self.entries[entry_id] = MediaEntry(
                id=entry_id, partner_id=self.partner.id, name=f"Lecture {i} <Q&A>",
                tags="physics, week 1", created_at=1_600_000_000 + i,
            )
            flavor_id = f"0_flav{i:04d}"
            self.flavors[flavor_id] = FlavorAsset(
                id=flavor_id, entry_id=entry_id, partner_id=self.partner.id,
                content=SeededContent(seed=i, size=FLAVOR_SIZE), size_in_bytes=FLAVOR_SIZE,
                size=FLAVOR_SIZE // 1024, is_original=True, frame_rate=29.97, bitrate=1200,
                tags="source,web",
            )

    def tick(self) -> None:
        self.ticks += 1

    def flavor_content(self, flavor_id: str) -> Any:
        flavor = self.flavors.get(flavor_id)
        if flavor is None or flavor.content is None:
            raise KalturaError("FLAVOR_ASSET_ID_NOT_FOUND", f'Flavor asset id "{flavor_id}" '
                               "not found", {"ID": flavor_id})
        return flavor.content

    def asset_content(self, kind: str, asset_id: str) -> Any:
        raise KalturaError("ASSET_ID_NOT_FOUND", f'Asset id "{asset_id}" not found')

    def record_play(self, entry_id: str) -> MediaEntry:
        entry = self.get_entry(entry_id)
        entry.plays += 1
        entry.views += 1
        entry.last_played_at = int(self.clock.now())
        return entry

    def get_entry(self, entry_id: str) -> MediaEntry:
        if entry_id not in self.entries:
            raise entry_not_found(entry_id)
        return self.entries[entry_id]

    def snapshot(self) -> dict[str, Any]:
        return {"entries": sorted(self.entries)}


# -------------------------------------------------------------------------- stand-in actions


def _media_list(b: StubBackend, p: dict[str, Any], _c: CallContext) -> ListResponse:
    size = int(p.get("pager", {}).get("pageSize", 30))
    entries = list(b.entries.values())
    return ListResponse("KalturaMediaListResponse", entries[:size], len(entries))


def _media_update(b: StubBackend, p: dict[str, Any], _c: CallContext) -> MediaEntry:
    entry = b.get_entry(p["entryId"])
    if "name" in p.get("mediaEntry", {}):
        entry.name = p["mediaEntry"]["name"]
    return entry


def _media_delete(b: StubBackend, p: dict[str, Any], _c: CallContext) -> None:
    b.get_entry(p["entryId"])
    del b.entries[p["entryId"]]


def _flavor_list(b: StubBackend, p: dict[str, Any], _c: CallContext) -> ListResponse:
    wanted = set(p.get("filter", {}).get("entryIdIn", "").split(",")) - {""}
    items = [f for f in b.flavors.values() if not wanted or f.entry_id in wanted]
    return ListResponse("KalturaFlavorAssetListResponse", items, len(items))


def _flavor_get_url(b: StubBackend, p: dict[str, Any], c: CallContext) -> str:
    flavor = b.flavors.get(p["id"])
    if flavor is None:
        raise KalturaError("FLAVOR_ASSET_ID_NOT_FOUND", f'Flavor asset id "{p["id"]}" not found',
                           {"ID": p["id"]})
    pid = c.partner_id
    return f"{c.base_url}/p/{pid}/sp/{pid}00/download/flavor/{flavor.id}/a.mp4"


def _token_add(b: StubBackend, p: dict[str, Any], c: CallContext) -> UploadToken:
    spec = p.get("uploadToken", {})
    token = UploadToken(id=f"0_tok{len(b.tokens)}", partner_id=c.partner_id,
                        user_id=c.user_id, file_name=spec.get("fileName", ""),
                        file_size=float(spec["fileSize"]) if "fileSize" in spec else None)
    b.tokens[token.id] = token
    return token


def _token_upload(b: StubBackend, p: dict[str, Any], _c: CallContext) -> UploadToken:
    token = b.tokens[p["uploadTokenId"]]
    data = p["fileData"]
    token.data += data
    token.uploaded_file_size = float(len(token.data))
    token.status = 2
    token.file_name = token.file_name or getattr(data, "filename", "")
    return token


def _echo(_b: StubBackend, p: dict[str, Any], _c: CallContext) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, bytes):
            return {"bytes": value.decode(), "filename": getattr(value, "filename", None)}
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return json.dumps(plain(p), sort_keys=True)


def _whoami(_b: StubBackend, _p: dict[str, Any], c: CallContext) -> dict[str, Any]:
    return {"objectType": "KalturaWhoAmI", "userId": c.user_id, "type": c.session_type,
            "privileges": c.privileges, "partnerId": c.partner_id}


def _crash(_b: StubBackend, _p: dict[str, Any], _c: CallContext) -> None:
    raise RuntimeError("a handler bug")


STUB_ACTIONS: dict[tuple[str, str], Callable[..., Any]] = {
    ("media", "get"): lambda b, p, c: b.get_entry(p["entryId"]),
    ("media", "list"): _media_list,
    ("media", "update"): _media_update,
    ("media", "delete"): _media_delete,
    ("baseentry", "delete"): _media_delete,
    ("baseentry", "count"): lambda b, p, c: len(b.entries),
    ("flavorasset", "list"): _flavor_list,
    ("flavorasset", "getUrl"): _flavor_get_url,
    ("uploadtoken", "add"): _token_add,
    ("uploadtoken", "upload"): _token_upload,
    ("test", "echo"): _echo,
    ("test", "whoami"): _whoami,
    ("test", "crash"): _crash,
}


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def _emu_server() -> Iterator[KalturaSandbox]:
    with KalturaSandbox(StubBackend(), actions=STUB_ACTIONS) as server:
        yield server


@pytest.fixture
def emu(_emu_server: KalturaSandbox) -> KalturaSandbox:
    """The running emulator over the stand-in model, reset to a known state."""
    backend: StubBackend = _emu_server.backend
    with backend.lock:
        backend.reset()
        backend.clock.offset = 0.0
        default = Partner()
        for name in ("download_rate_limit", "max_session_expiry", "conversion_delay"):
            setattr(backend.partner, name, getattr(default, name))
    _emu_server.faults.clear()
    _emu_server.throttle.reset()
    _emu_server.throttle.configure({**dict.fromkeys(_emu_server.throttle.limits()),
                                    **DEFAULT_LIMITS})
    _emu_server.stats.reset()
    return _emu_server


@pytest.fixture(scope="session")
def _client_for_emu(_emu_server: KalturaSandbox) -> KalturaClient:
    return KalturaClient(KalturaConfiguration(_emu_server.url))


@pytest.fixture
def client(emu: KalturaSandbox, _client_for_emu: KalturaClient) -> KalturaClient:
    """A real KalturaClient holding a fresh admin KS from session.start."""
    partner = emu.backend.partner
    # A multirequest that raised leaves the client in multirequest mode: start clean.
    _client_for_emu.multiRequestReturnType = None
    _client_for_emu.callsQueue = []
    _client_for_emu.setKs(None)
    ks = _client_for_emu.session.start(
        partner.admin_secret, "admin@example.edu", KalturaSessionType.ADMIN, partner.id
    )
    _client_for_emu.setKs(ks)
    return _client_for_emu


@pytest.fixture
def admin(emu: KalturaSandbox) -> Callable[..., Any]:
    """``admin("POST", "faults", {...})`` -> (status, decoded JSON) from the admin endpoints."""

    def call(method: str, name: str, body: Any = None) -> tuple[int, Any]:
        response = requests.request(method, f"{emu.url}/admin/{name}", json=body, timeout=10)
        return response.status_code, response.json()

    return call

