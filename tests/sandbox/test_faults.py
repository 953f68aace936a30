"""Injected faults reach the real client as the exceptions production would give it."""

from __future__ import annotations

import http.client
import urllib.request
from typing import Any

import pytest
import requests
from KalturaClient import KalturaClient
from KalturaClient.exceptions import KalturaClientException, KalturaException

from sandbox.kaltura.faults import FaultKind, Faults
from sandbox.kaltura.server import KalturaSandbox

# ------------------------------------------------------------------------------------- the queue


def test_faults_are_consumed_in_order_and_counted_down() -> None:
    faults = Faults()
    faults.add("media", "list", "api_error", count=2, code="A")
    faults.add("media", "list", "delay", seconds=1.5)
    taken = [faults.take("Media", "LIST") for _ in range(4)]
    assert [(f.kind, f.code) if f else None for f in taken] == [
        (FaultKind.API_ERROR, "A"), (FaultKind.API_ERROR, "A"),
        (FaultKind.DELAY, "INTERNAL_SERVER_ERROR"), None]
    assert faults.pending() == []


def test_a_wildcard_fault_hits_any_action_of_its_service() -> None:
    faults = Faults()
    faults.add("media", "*", "empty")
    assert faults.take("baseentry", "list") is None
    fault = faults.take("media", "update")
    assert fault is not None and fault.kind is FaultKind.EMPTY


@pytest.mark.parametrize(
    ("spec", "problem"),
    [({"service": "media", "action": "list", "kind": "explode"}, "explode"),
     ({"service": "media", "action": "list", "kind": "api_error", "colour": 1}, "colour"),
     ({"service": "media", "action": "list", "kind": "http_500", "status": 404}, "5xx"),
     ({"service": "media", "action": "list", "kind": "empty", "count": 0}, "count")],
)
def test_malformed_fault_specs_are_refused(spec: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Faults().add_from_json(spec)


# ------------------------------------------------------------------------------ the real client


def _fault(admin: Any, **spec: Any) -> None:
    status, body = admin("POST", "faults", spec)
    assert status == 200, body


def test_an_api_error_fault_raises_kaltura_exception_with_its_code(
    client: KalturaClient, admin: Any
) -> None:
    _fault(admin, service="media", action="get", kind="api_error", count=2)
    _fault(admin, service="media", action="get", kind="api_error", code="QUERY_TIMED_OUT",
           message="Query timed out")
    codes = []
    for _ in range(3):
        with pytest.raises(KalturaException) as caught:
            client.media.get("0_entry000")
        codes.append(caught.value.code)
    assert codes == ["INTERNAL_SERVER_ERROR", "INTERNAL_SERVER_ERROR", "QUERY_TIMED_OUT"]
    assert client.media.get("0_entry000").id == "0_entry000"


@pytest.mark.parametrize("status", [502, 503])
def test_a_gateway_page_is_a_client_error_minus_8(client: KalturaClient, emu: KalturaSandbox,
                                                  admin: Any, status: int) -> None:
    # lxml's recovering parser reads the HTML page; it has no <result>: the client says -8.
    _fault(admin, service="media", action="list", kind="http_500", status=status)
    raw = requests.post(f"{emu.url}/api_v3/service/media/action/list", json={}, timeout=10)
    assert raw.status_code == status and b"<html>" in raw.content
    _fault(admin, service="media", action="list", kind="http_500", status=status)
    with pytest.raises(KalturaClientException) as caught:
        client.media.list()
    assert caught.value.code == KalturaClientException.ERROR_RESULT_NOT_FOUND == -8


def test_an_empty_body_is_a_client_error_minus_2(client: KalturaClient, admin: Any) -> None:
    _fault(admin, service="media", action="list", kind="empty")
    with pytest.raises(KalturaClientException) as caught:
        client.media.list()
    assert caught.value.code == KalturaClientException.ERROR_INVALID_XML == -2


def test_a_delay_fault_sleeps_then_answers(client: KalturaClient, emu: KalturaSandbox,
                                           admin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(emu, "sleep", slept.append)
    _fault(admin, service="media", action="get", kind="delay", seconds=2.5)
    assert client.media.get("0_entry000").id == "0_entry000"
    assert slept == [2.5]


def test_a_lost_response_may_still_have_acted(client: KalturaClient, emu: KalturaSandbox,
                                              admin: Any) -> None:
    _fault(admin, service="media", action="delete", kind="http_500", run_action=True)
    with pytest.raises(KalturaClientException):
        client.media.delete("0_entry000")
    assert "0_entry000" not in emu.backend.entries
    _fault(admin, service="media", action="delete", kind="empty")
    with pytest.raises(KalturaClientException):
        client.media.delete("0_entry001")
    assert "0_entry001" in emu.backend.entries


def test_faults_hit_sub_calls_of_a_multirequest(client: KalturaClient, admin: Any) -> None:
    _fault(admin, service="media", action="get", kind="api_error", code="BOOM")
    client.startMultiRequest()
    client.media.get("0_entry000")
    client.media.get("0_entry001")
    failed, fetched = client.doMultiRequest()
    assert isinstance(failed, KalturaException) and failed.code == "BOOM"
    assert fetched.id == "0_entry001"

    _fault(admin, service="media", action="list", kind="http_500")
    client.startMultiRequest()
    client.media.get("0_entry000")
    client.media.list()
    with pytest.raises(KalturaClientException):
        client.doMultiRequest()


def test_a_fault_on_the_multirequest_itself_fails_the_whole_request(
    client: KalturaClient, admin: Any
) -> None:
    _fault(admin, service="multirequest", action="*", kind="api_error", code="LOCKED")
    client.startMultiRequest()
    client.media.get("0_entry000")
    with pytest.raises(KalturaException) as caught:
        client.doMultiRequest()
    assert caught.value.code == "LOCKED"


def test_admin_lists_and_clears_pending_faults(admin: Any) -> None:
    _fault(admin, service="download", action="flavor", kind="cut", after_bytes=10, count=3)
    status, shown = admin("GET", "faults")
    assert shown["pending"][0]["target"] == "download.flavor"
    assert shown["pending"][0]["count"] == 3 and shown["pending"][0]["after_bytes"] == 10
    assert admin("DELETE", "faults") == (200, {"pending": []})
    assert admin("POST", "faults", {"service": "x", "action": "y", "kind": "nope"})[0] == 400


# ----------------------------------------------------------------------------------- downloads


def test_a_cut_download_is_a_short_read_for_requests(client: KalturaClient, admin: Any) -> None:
    url = client.flavorAsset.getUrl("0_flav0001")
    _fault(admin, service="download", action="flavor", kind="cut", after_bytes=1000)
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        requests.get(url, timeout=10)
    assert len(requests.get(url, timeout=10).content) > 1000  # the next download is whole


def test_a_cut_download_is_a_short_read_for_urllib(client: KalturaClient, admin: Any) -> None:
    url = client.flavorAsset.getUrl("0_flav0001")
    _fault(admin, service="download", action="flavor", kind="cut", after_bytes=5000)
    with (pytest.raises(http.client.IncompleteRead) as caught,
          urllib.request.urlopen(url, timeout=10) as response):
        response.read()
    assert len(caught.value.partial) == 5000


def test_a_gateway_fault_on_a_download_is_a_5xx(client: KalturaClient, admin: Any) -> None:
    url = client.flavorAsset.getUrl("0_flav0001")
    _fault(admin, service="download", action="flavor", kind="http_500", status=503)
    assert requests.get(url, timeout=10).status_code == 503
