"""Downloads: whole bodies, single ranges, HEAD, unknown assets and the bandwidth cap setting."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from KalturaClient import KalturaClient

from sandbox.kaltura.content import SeededContent
from sandbox.kaltura.server import KalturaSandbox, RangeNotSatisfiable, parse_range

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", (0, 99)),
        ("bytes=500-599", (500, 599)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-", (990, 999)),
        ("bytes=900-5000", (900, 999)),
        ("bytes=0-1,5-6", None),  # several ranges: served whole
        ("bytes=9-3", None),
        ("lines=1-2", None),
        ("bytes=-", None),
    ],
)
def test_range_headers_are_read_as_rfc_9110_says(header: str | None, expected: Any) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=1000-", SIZE), ("bytes=-0", SIZE),
                                              ("bytes=0-", 0), ("bytes=-1", 0)])
def test_a_range_past_the_end_is_not_satisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


@pytest.fixture
def url(client: KalturaClient) -> str:
    return client.flavorAsset.getUrl("0_flav0001")


@pytest.fixture
def expected(emu: KalturaSandbox) -> SeededContent:
    return emu.backend.flavors["0_flav0001"].content


def test_a_whole_flavor_downloads_with_its_length(url: str, expected: SeededContent,
                                                  emu: KalturaSandbox) -> None:
    response = requests.get(url, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(expected.size)
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Type"] == "video/mp4"
    assert response.content == expected.read(0, expected.size)
    assert emu.stats.snapshot()["download.flavor"] == 1


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-99", 0, 99), ("bytes=1048570-1048600", 1048570, 1048600),
     ("bytes=-100", -100, -1), ("bytes=2000000-", 2000000, -1)],
)
def test_a_range_gets_206_with_its_content_range(url: str, expected: SeededContent,
                                                 header: str, first: int, last: int) -> None:
    size = expected.size
    start, end = first % size, last % size
    response = requests.get(url, headers={"Range": header}, timeout=30)
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {start}-{end}/{size}"
    assert response.content == expected.read(start, end - start + 1)


def test_a_range_past_the_end_is_416(url: str, expected: SeededContent) -> None:
    response = requests.get(url, headers={"Range": f"bytes={expected.size}-"}, timeout=30)
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{expected.size}"


def test_head_gives_the_length_without_a_body(url: str, expected: SeededContent) -> None:
    response = requests.head(url, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(expected.size)
    assert response.content == b""
    ranged = requests.head(url, headers={"Range": "bytes=0-9"}, timeout=30)
    assert (ranged.status_code, ranged.headers["Content-Length"]) == (206, "10")


def test_an_unknown_asset_is_404(emu: KalturaSandbox) -> None:
    base = f"{emu.url}/p/100/sp/10000/download"
    assert requests.get(f"{base}/flavor/0_nothing/a.mp4", timeout=10).status_code == 404
    assert requests.get(f"{base}/caption/0_nothing/a.srt", timeout=10).status_code == 404
    assert requests.get(f"{emu.url}/elsewhere", timeout=10).status_code == 404


def test_a_capped_download_still_delivers_every_byte(url: str, expected: SeededContent,
                                                     admin: Any) -> None:
    # The pacing arithmetic is tested with a fake clock in test_throttle; here only that a cap
    # set over admin HTTP is applied without corrupting the stream (a high cap: no waiting).
    status, shown = admin("POST", "partner", {"download_rate_limit": 200_000_000})
    assert status == 200 and shown["download_rate_limit"] == 200_000_000
    response = requests.get(url, headers={"Range": "bytes=0-300000"}, timeout=30)
    assert response.content == expected.read(0, 300001)


def test_a_delayed_download_is_served_after_the_delay(url: str, expected: SeededContent,
                                                      emu: KalturaSandbox, admin: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(emu, "sleep", slept.append)
    admin("POST", "faults", {"service": "download", "action": "flavor", "kind": "delay",
                             "seconds": 3})
    assert len(requests.get(url, timeout=30).content) == expected.size
    assert slept == [3.0]


def test_a_client_resetting_its_connection_is_no_server_fault(
    emu: KalturaSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    server = emu._httpd
    assert server is not None
    for error in (ConnectionResetError(104, "Connection reset by peer"), ValueError("boom")):
        try:
            raise error
        except Exception:  # noqa: BLE001 - handle_error reads the exception being handled
            server.handle_error(None, ("127.0.0.1", 40000))
    err = capsys.readouterr().err
    assert "ConnectionResetError" not in err  # a killed client: quiet
    assert "ValueError: boom" in err  # a real fault still shows
