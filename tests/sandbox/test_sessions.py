"""Sessions: the KS the real client makes is accepted, and every bad KS gets the real error."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from KalturaClient import KalturaClient
from KalturaClient.exceptions import KalturaException
from KalturaClient.Plugins.Core import KalturaSessionType

from sandbox.kaltura.records import Partner
from sandbox.kaltura.server import KalturaSandbox
from sandbox.kaltura.sessions import Sessions, generate_ks_v1, generate_ks_v2, parse_ks

SECRET = Partner().admin_secret
PID = Partner().id


def _text(ks: bytes | str) -> str:
    return ks.decode() if isinstance(ks, bytes) else ks


@pytest.mark.parametrize("generate", [KalturaClient.generateSession,
                                      KalturaClient.generateSessionV2])
def test_the_clients_own_ks_formats_are_accepted(generate: Any) -> None:
    ks = _text(generate(SECRET, "jdoe@example.edu", 2, PID, 3600, "disableentitlement"))
    session = parse_ks(ks, SECRET)
    assert session is not None
    assert (session.partner_id, session.type, session.user_id) == (PID, 2, "jdoe@example.edu")
    assert session.privileges == "disableentitlement"
    assert abs(session.valid_until - (time.time() + 3600)) < 60


@pytest.mark.parametrize("generate", [generate_ks_v1, generate_ks_v2])
def test_our_ks_round_trips_with_privileges(generate: Any) -> None:
    ks = generate(SECRET, PID, "u1", 0, 2_000_000_000, "disableentitlement,sview:0_abc")
    session = parse_ks(ks, SECRET)
    assert session is not None
    assert (session.valid_until, session.type, session.user_id) == (2_000_000_000, 0, "u1")
    assert session.privileges == "disableentitlement,sview:0_abc"


@pytest.mark.parametrize("generate", [generate_ks_v1, generate_ks_v2,
                                      KalturaClient.generateSession,
                                      KalturaClient.generateSessionV2])
def test_a_ks_signed_with_another_secret_is_rejected(generate: Any) -> None:
    if generate in (generate_ks_v1, generate_ks_v2):
        ks = generate("other-secret", PID, "u", 2, 2_000_000_000)
    else:
        ks = _text(generate("other-secret", "u", 2, PID))
    assert parse_ks(ks, SECRET) is None


@pytest.mark.parametrize("garbage", ["", "not a ks", "djJ8MTAwfA==", "YWJjfGRlZg==", "%%%"])
def test_garbage_is_not_a_ks(garbage: str) -> None:
    assert parse_ks(garbage, SECRET) is None


def test_session_start_returns_a_v2_ks_that_opens_the_api(client: KalturaClient) -> None:
    assert client.getKs().startswith("djJ8")
    assert client.media.get("0_entry000").id == "0_entry000"


def test_a_user_session_may_use_the_user_secret(client: KalturaClient,
                                                emu: KalturaSandbox) -> None:
    partner = emu.backend.partner
    ks = client.session.start(partner.user_secret, "jdoe", KalturaSessionType.USER, partner.id)
    session = parse_ks(ks, partner.admin_secret)
    assert session is not None and (session.type, session.user_id) == (0, "jdoe")


@pytest.mark.parametrize(
    ("secret_of", "type_"),
    [("user", KalturaSessionType.ADMIN), ("wrong", KalturaSessionType.ADMIN),
     ("wrong", KalturaSessionType.USER)],
)
def test_session_start_with_the_wrong_secret_fails(
    client: KalturaClient, emu: KalturaSandbox, secret_of: str, type_: int
) -> None:
    partner = emu.backend.partner
    secret = partner.user_secret if secret_of == "user" else "guess"
    with pytest.raises(KalturaException) as caught:
        client.session.start(secret, "u", type_, partner.id)
    assert caught.value.code == "START_SESSION_ERROR"
    assert caught.value.message == f"Error while starting session for partner [{partner.id}]"


def test_session_expiry_is_capped(client: KalturaClient, emu: KalturaSandbox) -> None:
    partner = emu.backend.partner
    ks = client.session.start(partner.admin_secret, "u", KalturaSessionType.ADMIN, partner.id,
                              10 * 86400)
    session = parse_ks(ks, partner.admin_secret)
    assert session is not None
    assert session.valid_until <= emu.backend.clock.now() + partner.max_session_expiry


def test_the_session_reaches_the_action_context(client: KalturaClient,
                                                emu: KalturaSandbox) -> None:
    partner = emu.backend.partner
    ks = client.session.start(partner.admin_secret, "jdoe", KalturaSessionType.ADMIN, partner.id,
                              3600, "disableentitlement")
    body = requests.post(f"{emu.url}/api_v3/service/test/action/whoami",
                         json={"ks": ks, "format": "1"}, timeout=10).json()
    assert body == {"objectType": "KalturaWhoAmI", "userId": "jdoe", "type": 2,
                    "privileges": "disableentitlement", "partnerId": partner.id}


def _invalid(ks: str, code: str) -> str:
    return f'Invalid KS "{ks}", Error "{code}"'


def test_an_expired_ks_is_refused(client: KalturaClient, emu: KalturaSandbox,
                                  admin: Any) -> None:
    ks = client.getKs()
    admin("POST", "clock", {"advance": 86401})
    with pytest.raises(KalturaException) as caught:
        client.media.get("0_entry000")
    assert caught.value.code == "INVALID_KS"
    assert caught.value.message == _invalid(ks, "-5,EXPIRED")


def test_an_ended_session_is_logged_out(client: KalturaClient) -> None:
    ks = client.getKs()
    assert client.session.end() is None
    with pytest.raises(KalturaException) as caught:
        client.media.get("0_entry000")
    assert caught.value.message == _invalid(ks, "-6,LOGOUT")


@pytest.mark.parametrize("bad", ["garbage", KalturaClient.generateSessionV2("x", "u", 2, PID)],
                         ids=["garbage", "signed-with-another-secret"])
def test_a_bad_ks_is_invalid(client: KalturaClient, bad: str | bytes) -> None:
    client.setKs(_text(bad))
    with pytest.raises(KalturaException) as caught:
        client.media.list()
    assert caught.value.code == "INVALID_KS"
    assert caught.value.message == _invalid(_text(bad), "-1,INVALID_STR")


def test_a_ks_of_another_partner_is_invalid(emu: KalturaSandbox) -> None:
    sessions = Sessions(emu.backend.partner, time.time)
    ks = generate_ks_v2(SECRET, PID + 1, "u", 2, 2_000_000_000)
    with pytest.raises(Exception, match="INVALID_STR"):
        sessions.validate(ks)


def test_no_ks_is_a_missing_session(client: KalturaClient) -> None:
    client.setKs(None)
    with pytest.raises(KalturaException) as caught:
        client.media.list()
    assert (caught.value.code, caught.value.message) == (
        "MISSING_KS", "Missing KS, session not established")


def test_a_partner_id_without_ks_is_forbidden(emu: KalturaSandbox) -> None:
    body = requests.post(f"{emu.url}/api_v3/service/media/action/list",
                         json={"partnerId": "100", "format": "1"}, timeout=10).json()
    assert (body["code"], body["message"]) == (
        "SERVICE_FORBIDDEN", "The access to service [media->list] is forbidden")


def test_ping_needs_no_session(emu: KalturaSandbox) -> None:
    body = requests.post(f"{emu.url}/api_v3/service/system/action/ping", json={"format": "1"},
                         timeout=10).json()
    assert body is True


def test_renewing_needs_the_stale_ks_dropped_first(client: KalturaClient, emu: KalturaSandbox,
                                                   admin: Any) -> None:
    partner = emu.backend.partner
    admin("POST", "clock", {"advance": 86401})
    with pytest.raises(KalturaException, match="EXPIRED"):
        client.session.start(partner.admin_secret, "u", KalturaSessionType.ADMIN, partner.id)
    client.setKs(None)
    client.setKs(client.session.start(partner.admin_secret, "u", KalturaSessionType.ADMIN,
                                      partner.id))
    assert client.media.get("0_entry000").id == "0_entry000"


@pytest.mark.parametrize("generate", [KalturaClient.generateSession,
                                      KalturaClient.generateSessionV2])
def test_an_actions_limited_ks_serves_that_many_calls(client: KalturaClient,
                                                      generate: Any) -> None:
    ks = _text(generate(SECRET, "u", 2, PID, 3600, "actionslimit:2,disableentitlement"))
    client.setKs(ks)
    assert client.media.get("0_entry000").id == "0_entry000"
    assert client.media.get("0_entry001").id == "0_entry001"  # the second and last call
    with pytest.raises(KalturaException) as caught:
        client.media.get("0_entry000")
    assert caught.value.code == "INVALID_KS"
    assert caught.value.message == _invalid(ks, "-8,EXCEEDED_ACTIONS_LIMIT")


@pytest.mark.parametrize("value", ["0", "x", ""])
def test_an_actions_limit_that_is_not_a_positive_number_is_refused(client: KalturaClient,
                                                                   value: str) -> None:
    client.setKs(_text(KalturaClient.generateSessionV2(SECRET, "u", 2, PID, 3600,
                                                       f"actionslimit:{value}")))
    with pytest.raises(KalturaException) as caught:
        client.media.get("0_entry000")
    assert caught.value.code == "INVALID_ACTIONS_LIMIT"
