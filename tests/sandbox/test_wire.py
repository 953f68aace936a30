"""The emulator's wire format: what real clients send is decoded, what they parse is encoded."""

from __future__ import annotations

import http.client
import io
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from KalturaClient import KalturaClient, KalturaConfiguration
from KalturaClient.exceptions import KalturaException
from KalturaClient.Plugins.Core import (
    KalturaFilterPager,
    KalturaFlavorAssetFilter,
    KalturaMediaEntry,
    KalturaMediaEntryFilter,
    KalturaUploadToken,
)
from lxml import etree

from sandbox.kaltura import wire
from sandbox.kaltura.content import SeededContent
from sandbox.kaltura.exceptions import KalturaError
from sandbox.kaltura.records import FlavorAsset, ListResponse, MediaEntry
from sandbox.kaltura.server import KalturaSandbox

# ------------------------------------------------------------------------------------ decoding


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("filter[objectType]", "KalturaMediaEntryFilter"), ("pager[pageSize]", "500")],
         {"filter": {"objectType": "KalturaMediaEntryFilter"}, "pager": {"pageSize": "500"}}),
        ([("filter:statusIn", "2,7")], {"filter": {"statusIn": "2,7"}}),
        ([("0:service", "media"), ("0:filter[idIn]", "a,b")],
         {"0": {"service": "media", "filter": {"idIn": "a,b"}}}),
        ([("a[b][c]", "1"), ("a[b][d]", "2")], {"a": {"b": {"c": "1", "d": "2"}}}),
        ([("name__null", "")], {"name__null": ""}),
    ],
)
def test_form_keys_nest_into_dicts(pairs: list[tuple[str, str]], expected: dict[str, Any]) -> None:
    assert wire.nest(pairs) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"tags": {"-": ""}}, {"tags": []}),
        ({"n": 5, "f": 1.5, "t": True, "z": False}, {"n": "5", "f": "1.5", "t": "1", "z": "0"}),
        ({"list": [{"a": 1}]}, {"list": [{"a": "1"}]}),
    ],
)
def test_json_scalars_become_strings_and_empty_arrays_lists(value: Any, expected: Any) -> None:
    assert wire.normalise(value) == expected


def test_query_string_and_body_merge_with_the_body_winning() -> None:
    params = wire.decode_request(
        "format=1&ks=a&filter[idIn]=x", "application/json", b'{"ks": "b", "filter": {"o": 1}}'
    )
    assert params == {"format": "1", "ks": "b", "filter": {"idIn": "x", "o": "1"}}


def test_an_undecodable_json_body_is_an_api_error() -> None:
    with pytest.raises(KalturaError) as caught:
        wire.decode_request("", "application/json", b"{nope")
    assert caught.value.code == "INVALID_JSON"


@pytest.mark.parametrize(
    ("sent", "kept"), [("a.mp4", "a.mp4"), ("C:\\videos\\b.mp4", "b.mp4"), ("../../etc/x", "x")]
)
def test_uploaded_files_keep_only_the_base_name(sent: str, kept: str) -> None:
    assert wire.UploadedFile(b"", sent).filename == kept


# ------------------------------------------------------------------------------------ encoding


def _parse(body: bytes) -> Any:
    return etree.fromstring(body)


def test_a_record_is_encoded_with_object_type_first_nulls_empty_and_bools_as_digits() -> None:
    entry = MediaEntry(id="0_a", partner_id=100, name='A & "B" <c>', last_played_at=None)
    root = _parse(wire.encode_response(entry, wire.FORMAT_XML)[0])
    result = root.find("result")
    assert [c.tag for c in result][:2] == ["objectType", "id"]
    assert result.findtext("objectType") == "KalturaMediaEntry"
    assert result.findtext("name") == 'A & "B" <c>'
    assert result.find("lastPlayedAt").text is None
    assert root.find("executionTime") is not None
    flavor = FlavorAsset(id="0_f", entry_id="0_a", partner_id=100, is_original=True)
    assert _parse(wire.encode_response(flavor, "2")[0]).findtext("result/isOriginal") == "1"


def test_hidden_fields_are_never_sent() -> None:
    flavor = FlavorAsset(id="0_f", entry_id="0_a", partner_id=100, content=None)
    assert b"<content>" not in wire.encode_response(flavor, "2")[0]


def test_an_empty_list_still_has_objects_and_the_true_total() -> None:
    body = wire.encode_response(ListResponse("KalturaMediaListResponse", [], 12000), "2")[0]
    assert b"<objects></objects><totalCount>12000</totalCount>" in body


def test_an_error_carries_code_message_and_args() -> None:
    error = KalturaError("ENTRY_ID_NOT_FOUND", 'Entry id "0_x" not found', {"ENTRY_ID": "0_x"})
    body = wire.encode_response(error, "2")[0]
    assert b"<message>Entry id &quot;0_x&quot; not found</message>" in body
    assert (b"<args><item><objectType>KalturaApiExceptionArg</objectType><name>ENTRY_ID</name>"
            b"<value>0_x</value></item></args>") in body


@pytest.mark.parametrize(("value", "text"), [(12.0, "12"), (29.97, "29.97"), (7, "7"),
                                             (True, "1"), (None, "")])
def test_numbers_are_written_so_both_int_and_float_readers_accept_them(
    value: Any, text: str
) -> None:
    assert wire.xml_value(value) == text


def test_json_format_drops_nulls_and_shapes_errors_and_multirequests() -> None:
    entry = MediaEntry(id="0_a", partner_id=100, last_played_at=None, replacing_entry_id=None)
    decoded = json.loads(wire.encode_response(entry, wire.FORMAT_JSON)[0])
    assert decoded["objectType"] == "KalturaMediaEntry"
    assert "lastPlayedAt" not in decoded
    error = KalturaError("X", "m", {"A": "1"})
    multi = json.loads(wire.encode_multi_response([None, error], wire.FORMAT_JSON)[0])
    assert multi == [None, {"code": "X", "message": "m", "objectType": "KalturaAPIException",
                            "args": {"A": "1"}}]


# -------------------------------------------------------------------------- result references


ENTRY = MediaEntry(id="0_first", partner_id=100, plays=4)
LISTED = ListResponse("KalturaMediaListResponse", [ENTRY], 1)


@pytest.mark.parametrize(
    ("param", "results", "expected"),
    [
        ("{1:result}", ["ks-text"], "ks-text"),
        ("{1:result:id}", [ENTRY], "0_first"),
        ("{1:result:plays}", [ENTRY], "4"),
        ("{1:result:objects:0:id}", [LISTED], "0_first"),
        ("{1:result:totalCount}", [LISTED], "1"),
        ("id in ({2:result:id},x)", ["s", ENTRY], "id in (0_first,x)"),
        ("{1:result:id}", [KalturaError("E", "e")], "{1:result:id}"),  # error: left as written
        ("{3:result}", ["a"], "{3:result}"),  # a later call: left as written
        ("{1:result:objects:5:id}", [LISTED], "{1:result:objects:5:id}"),
    ],
)
def test_references_resolve_against_earlier_results(
    param: str, results: list[Any], expected: str
) -> None:
    assert wire.resolve_references({"a": {"b": param}}, results) == {"a": {"b": expected}}


# ------------------------------------------------------------------ the real client over HTTP


def test_the_client_reads_an_entry_with_typed_fields(client: KalturaClient) -> None:
    entry = client.media.get("0_entry001")
    assert isinstance(entry, KalturaMediaEntry)
    assert entry.name == "Lecture 1 <Q&A>"
    assert entry.status.getValue() == "2"
    assert entry.mediaType.getValue() == 1
    assert entry.lastPlayedAt is None
    assert entry.createdAt == 1_600_000_001


def test_the_client_reads_lists_of_media_and_flavors(client: KalturaClient) -> None:
    listed = client.media.list(KalturaMediaEntryFilter(), KalturaFilterPager(pageSize=2))
    assert listed.totalCount == 3
    assert [e.id for e in listed.objects] == ["0_entry000", "0_entry001"]
    flavors = client.flavorAsset.list(KalturaFlavorAssetFilter(entryIdIn="0_entry002"))
    assert [(f.id, f.isOriginal, f.frameRate) for f in flavors.objects] == [
        ("0_flav0002", True, 29.97)
    ]


def test_the_client_reads_an_empty_list(client: KalturaClient, emu: KalturaSandbox) -> None:
    emu.backend.entries.clear()
    listed = client.media.list()
    assert (listed.objects, listed.totalCount) == ([], 0)


def test_the_client_reads_strings_numbers_and_void(client: KalturaClient) -> None:
    assert client.flavorAsset.getUrl("0_flav0001").endswith("/download/flavor/0_flav0001/a.mp4")
    assert client.baseEntry.count() == 3
    assert client.media.delete("0_entry000") is None


def test_the_client_raises_api_errors_with_their_code(client: KalturaClient) -> None:
    with pytest.raises(KalturaException) as caught:
        client.media.get("0_missing")
    assert caught.value.code == "ENTRY_ID_NOT_FOUND"
    assert caught.value.message == 'Entry id "0_missing" not found'


def test_a_handler_crash_is_an_internal_error_not_a_dropped_connection(
    emu: KalturaSandbox, client: KalturaClient
) -> None:
    body = requests.post(f"{emu.url}/api_v3/service/test/action/crash",
                         json={"ks": client.getKs()}, timeout=10).content
    assert b"<code>INTERNAL_SERVERL_ERROR</code>" in body


def test_an_upload_arrives_as_bytes_with_its_file_name(client: KalturaClient) -> None:
    token = client.uploadToken.add(KalturaUploadToken(fileSize=5))
    data = io.BytesIO(b"hello")
    data.name = "/home/someone/clip.mp4"
    uploaded = client.uploadToken.upload(token.id, data)
    assert (uploaded.uploadedFileSize, uploaded.fileName) == (5.0, "clip.mp4")
    assert uploaded.status.getValue() == 2


def test_unknown_services_and_actions_are_named_in_the_error(client: KalturaClient,
                                                             emu: KalturaSandbox) -> None:
    ks = client.getKs()
    nope = requests.post(f"{emu.url}/api_v3/service/nope/action/list", json={"ks": ks}, timeout=10)
    assert b"SERVICE_DOES_NOT_EXISTS" in nope.content
    bad = requests.post(f"{emu.url}/api_v3/service/media/action/nope", json={"ks": ks}, timeout=10)
    assert b'Action &quot;nope&quot; does not exists for service &quot;media&quot;' in bad.content


# ---------------------------------------------------------------------------- raw HTTP clients


def test_a_form_encoded_request_with_format_1_gets_json(emu: KalturaSandbox,
                                                        client: KalturaClient) -> None:
    response = requests.post(
        f"{emu.url}/api_v3/service/test/action/echo",
        data={"ks": client.getKs(), "format": "1", "filter[objectType]": "KalturaMediaEntryFilter",
              "pager[pageSize]": "500"},
        timeout=10,
    )
    assert response.headers["Content-Type"].startswith("application/json")
    echoed = json.loads(response.json())
    assert echoed["filter"] == {"objectType": "KalturaMediaEntryFilter"}
    assert echoed["pager"] == {"pageSize": "500"}


def test_json_format_lists_and_errors(emu: KalturaSandbox, client: KalturaClient) -> None:
    ks = client.getKs()
    listed = requests.post(f"{emu.url}/api_v3/service/media/action/list",
                           data={"ks": ks, "format": "1"}, timeout=10).json()
    assert listed["objectType"] == "KalturaMediaListResponse"
    assert {o["objectType"] for o in listed["objects"]} == {"KalturaMediaEntry"}
    assert "lastPlayedAt" not in listed["objects"][0]
    error = requests.get(f"{emu.url}/api_v3/index.php",
                         params={"service": "media", "action": "get", "entryId": "0_x",
                                 "ks": ks, "format": "1"}, timeout=10).json()
    assert error == {"code": "ENTRY_ID_NOT_FOUND", "message": 'Entry id "0_x" not found',
                     "objectType": "KalturaAPIException", "args": {"ENTRY_ID": "0_x"}}


@pytest.mark.parametrize(
    "path",
    ["/api_v3/service/MEDIA/action/GET", "/api_v3/index.php?service=Media&action=get",
     "/api_v3/index.php/service/media/action/get"],
)
def test_routes_match_service_and_action_case_insensitively(
    emu: KalturaSandbox, client: KalturaClient, path: str
) -> None:
    response = requests.post(f"{emu.url}{path}", json={"ks": client.getKs(),
                                                        "entryId": "0_entry000"}, timeout=10)
    assert b"<id>0_entry000</id>" in response.content


def test_a_multipart_multirequest_routes_each_file_to_its_call(
    emu: KalturaSandbox, client: KalturaClient
) -> None:
    params = {"ks": client.getKs(), "format": "1",
              "0": {"service": "test", "action": "echo"},
              "1": {"service": "test", "action": "echo", "tag": "{1:result}"}}
    response = requests.post(
        f"{emu.url}/api_v3/service/multirequest",
        files={"json": (None, json.dumps(params)), "1:fileData": ("dir/part.bin", b"xyz")},
        timeout=10,
    )
    first, second = (json.loads(r) for r in response.json())
    assert "fileData" not in first
    assert second["fileData"] == {"bytes": "xyz", "filename": "part.bin"}
    assert json.loads(second["tag"])["ks"] == client.getKs()  # the first result, inherited ks


# ------------------------------------------------------------------------------ multirequests


def test_a_multirequest_resolves_references_and_isolates_a_failing_call(
    client: KalturaClient, emu: KalturaSandbox
) -> None:
    client.startMultiRequest()
    client.media.get("0_entry000")
    first = client.getMultiRequestResult()
    client.media.update(first.id, KalturaMediaEntry(name="renamed"))
    client.media.get("0_missing")
    client.media.list()
    fetched, updated, failed, listed = client.doMultiRequest()
    assert (fetched.id, updated.id, updated.name) == ("0_entry000", "0_entry000", "renamed")
    assert isinstance(failed, KalturaException) and failed.code == "ENTRY_ID_NOT_FOUND"
    assert listed.totalCount == 3
    calls = emu.stats.snapshot()
    assert (calls["multirequest"], calls["media.get"], calls["media.update"]) == (1, 2, 1)


def test_a_reference_to_a_failed_call_is_left_unresolved(client: KalturaClient) -> None:
    client.startMultiRequest()
    client.media.get("0_missing")
    client.media.get(client.getMultiRequestResult().id)
    _, second = client.doMultiRequest()
    assert second.code == "ENTRY_ID_NOT_FOUND"
    assert second.message == 'Entry id "{1:result:id}" not found'


def test_a_session_started_in_a_multirequest_authenticates_the_next_call(
    emu: KalturaSandbox,
) -> None:
    partner = emu.backend.partner
    body = {"format": "1",
            "1": {"service": "session", "action": "start", "secret": partner.admin_secret,
                  "type": "2", "partnerId": str(partner.id)},
            "2": {"service": "media", "action": "get", "entryId": "0_entry001",
                  "ks": "{1:result}"}}
    ks, entry = requests.post(f"{emu.url}/api_v3/service/multirequest", json=body,
                              timeout=10).json()
    assert ks.startswith("djJ8") and entry["id"] == "0_entry001"


# ------------------------------------------------------------------------------ server basics


def test_connections_are_kept_alive(emu: KalturaSandbox) -> None:
    conn = http.client.HTTPConnection(*urlsplit(emu.url).netloc.split(":"), timeout=10)
    conn.request("GET", "/admin/stats")
    conn.getresponse().read()
    first = conn.sock
    conn.request("GET", "/admin/stats")
    assert conn.getresponse().status == 200
    assert conn.sock is first
    conn.close()


def test_admin_play_records_a_play(emu: KalturaSandbox, admin: Any) -> None:
    status, played = admin("POST", "play", {"entryId": "0_entry001"})
    assert status == 200 and played["plays"] == 1 and played["lastPlayedAt"] is not None
    assert admin("POST", "play", {"entryId": "0_nope"})[1]["code"] == "ENTRY_ID_NOT_FOUND"


def test_admin_partner_settings_are_validated(emu: KalturaSandbox, admin: Any) -> None:
    status, shown = admin("POST", "partner", {"download_rate_limit": 1000, "conversion_delay": 0})
    assert status == 200 and shown["download_rate_limit"] == 1000.0
    assert emu.backend.partner.conversion_delay == 0.0
    status, error = admin("POST", "partner", {"colour": "red"})
    assert status == 400 and "colour" in error["error"]
    assert admin("GET", "nothing-here")[0] == 404


def test_admin_snapshot_writes_the_backend_snapshot(admin: Any, tmp_path: Any) -> None:
    target = tmp_path / "state.json"
    assert admin("POST", "snapshot", {"path": str(target)}) == (200, {"path": str(target)})
    assert json.loads(target.read_text())["entries"][0] == "0_entry000"



# ------------------------------------------------------------------ the real action table


@pytest.fixture(scope="module")
def real_emu() -> Any:
    """The emulator over the real models and ``responses.ACTIONS``, with 600 entries."""
    from sandbox.kaltura.models import KalturaBackend

    backend = KalturaBackend()
    now = int(backend.clock.now())
    for i in range(600):
        entry = MediaEntry(id=f"0_{i:08d}", partner_id=backend.partner.id, name=f"E{i} <&>",
                           created_at=now - 10_000 + i, updated_at=now, tags="a, b")
        source = FlavorAsset(id=f"1_{i:08d}", entry_id=entry.id, partner_id=backend.partner.id,
                             content=SeededContent(i, 5000 + i), size_in_bytes=5000 + i,
                             size=5, is_original=True, tags="source", frame_rate=25.0)
        backend.insert(entry, flavors=[source])
    with KalturaSandbox(backend) as server:
        client = KalturaClient(KalturaConfiguration(server.url))
        partner = backend.partner
        client.setKs(client.session.start(partner.admin_secret, "admin", 2, partner.id))
        yield server, client


def test_a_500_entry_page_of_the_real_media_list_parses_in_the_client(real_emu: Any) -> None:
    _server, client = real_emu
    page = client.media.list(KalturaMediaEntryFilter(orderBy="+createdAt"),
                             KalturaFilterPager(pageSize=500))
    assert page.totalCount == 600
    assert len(page.objects) == 500
    assert all(isinstance(e, KalturaMediaEntry) for e in page.objects)
    assert (page.objects[0].id, page.objects[0].name) == ("0_00000000", "E0 <&>")


def test_a_real_flavor_lists_and_downloads_by_its_url(real_emu: Any) -> None:
    server, client = real_emu
    flavors = client.flavorAsset.list(KalturaFlavorAssetFilter(entryIdIn="0_00000007,0_00000009"))
    assert sorted(f.sizeInBytes for f in flavors.objects) == [5007, 5009]
    url = client.flavorAsset.getUrl("1_00000007")
    assert url.startswith(server.url)
    ranged = requests.get(url, headers={"Range": "bytes=-7"}, timeout=10)
    assert ranged.content == SeededContent(7, 5007).read(5000, 7)
