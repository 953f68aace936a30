"""Large URL imports are spooled to disk, served by range, and removed once unreferenced."""

from __future__ import annotations

import gc
import io
import os
from collections.abc import Callable

import pytest
from emu_api import Api, make_entry
from KalturaClient.Plugins.Core import KalturaUrlResource

from sandbox.kaltura.content import BytesContent
from sandbox.kaltura.models import spool


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(spool, "SPOOL_THRESHOLD", 1000)
    monkeypatch.setattr(spool, "_READ", 256)
    return 1000


def test_small_bodies_stay_in_memory(small_threshold: int) -> None:
    content = spool.read_body(io.BytesIO(b"x" * 999))
    assert isinstance(content, BytesContent) and content.size == 999


def test_large_bodies_go_to_a_file_that_is_removed_when_dropped(small_threshold: int) -> None:
    data = bytes(range(256)) * 20
    content = spool.read_body(io.BytesIO(data))
    assert isinstance(content, spool.FileContent)
    assert content.size == len(data)
    assert content.read(1000, 300) == data[1000:1300]
    assert content.read(len(data) - 10, 100) == data[-10:]
    assert content.read(len(data), 10) == b""
    path = content.path
    del content
    gc.collect()
    assert not os.path.exists(path)


def test_a_large_url_import_is_served_from_disk(api: Api, small_threshold: int,
                                                file_server: Callable[[str, bytes], str]) -> None:
    entry = make_entry(api.backend, 1)
    data = os.urandom(5000)
    api.client.media.updateContent(entry.id,
                                   KalturaUrlResource(url=file_server("/big.mp4", data)))
    api.ready()
    source = [f for f in api.backend.flavors_by_entry[entry.id]
              if f.is_original and f.status == 2][0]
    assert isinstance(source.content, spool.FileContent)
    assert api.backend.flavor_content(source.id).read(0, 5000) == data
