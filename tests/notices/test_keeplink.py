"""Keep links and keep tags (policies.keeplink), and the exemption a keep tag makes. Pure."""

from __future__ import annotations

from dataclasses import replace

import pytest

from policies import keeplink
from policies.desired import KEPT, Decider
from policies.keeplink import Grant, form_token, form_valid, keep_tag, kept, kept_until, valid
from policies.observed import ObservedEntry
from policies.schema import DesiredState, Policy

SECRET = "k" * 40
NOW = 1_800_000_000
GRANT = Grant.issue(bytes(range(16)), "ann", {"0_bbbbbbbb": "Two", "0_aaaaaaaa": "One"},
                    NOW, NOW + 86400)


def test_a_token_names_its_grant_and_is_valid_until_it_expires() -> None:
    link = keeplink.token(GRANT, SECRET)
    assert keeplink.nonce_of(link) == GRANT.nonce
    assert GRANT.entry_ids == ("0_aaaaaaaa", "0_bbbbbbbb")
    assert valid(link, GRANT, SECRET, NOW)
    assert valid(link, GRANT, SECRET, NOW + 86400)
    assert not valid(link, GRANT, SECRET, NOW + 86401)


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]


LINK = keeplink.token(GRANT, SECRET)
FORGED = {
    "another secret": keeplink.token(GRANT, "x" * 40),
    "a changed nonce": _flip(LINK, 3),
    "a changed signature": _flip(LINK, len(LINK) - 5),
    "a later expiry": LINK.replace(f".{GRANT.expires}.", f".{GRANT.expires + 86400}."),
    "garbage": "not-a-token",
    "empty": "",
}


@pytest.mark.parametrize("text", FORGED.values(), ids=FORGED.keys())
def test_a_forged_or_altered_token_is_refused(text: str) -> None:
    assert not valid(text, GRANT, SECRET, NOW)


GRANTS = {
    "another owner": replace(GRANT, owner="bob"),
    "one more entry": replace(GRANT, entry_ids=(*GRANT.entry_ids, "0_cccccccc")),
    "one entry fewer": replace(GRANT, entry_ids=GRANT.entry_ids[:1]),
    "a later expiry": replace(GRANT, expires=GRANT.expires + 86400),
    "no grant": None,
}


@pytest.mark.parametrize("grant", GRANTS.values(), ids=GRANTS.keys())
def test_a_grant_altered_in_storage_no_longer_matches_its_token(grant: Grant | None) -> None:
    assert not valid(LINK, grant, SECRET, NOW)


def test_grants_round_trip_and_junk_is_no_grant() -> None:
    assert Grant.from_json(GRANT.to_json()) == GRANT
    for junk in (b"", b"[]", b"{}", b'{"version": 2}', b"\xff", b'{"version": 1, "nonce": 1}'):
        assert Grant.from_json(junk) is None


def test_the_form_token_is_derived_from_the_link_and_not_guessable_from_it() -> None:
    form = form_token(LINK, SECRET)
    assert form not in LINK and form_valid(LINK, form, SECRET)
    assert not form_valid(LINK, form_token(LINK, "y" * 40), SECRET)
    assert not form_valid(LINK, "", SECRET)
    assert not form_valid(LINK, "é" * 10, SECRET)


@pytest.mark.parametrize(("tags", "until"), [
    ({"karchive_keep_until_20281201"}, 1859327999),  # through 2028-12-01 23:59:59 UTC
    ({"KARCHIVE_KEEP_UNTIL_20281201", "karchive_keep_until_20270101"}, 1859327999),
    ({"karchive_keep_until_20281399"}, None),
    ({"karchive_keep_until_2028"}, None),
    ({"archive_exempt"}, None),
])
def test_keep_tags_give_the_last_kept_instant(tags: set[str], until: int | None) -> None:
    assert kept_until(tags) == until


def test_a_keep_tag_lapses_after_its_day() -> None:
    tag = keep_tag(NOW)
    assert tag == "karchive_keep_until_20270115"
    assert kept({tag}, NOW) and kept({tag}, NOW + 3600)
    assert not kept({tag}, 1_800_057_600)  # 2027-01-16 00:00 UTC


def test_a_kept_entry_is_exempt_until_the_tag_lapses() -> None:
    policy = Policy.model_validate({
        "version": 1, "placeholder": "p.mp4",
        "kaltura": {"service_url": "https://k.example", "partner_id": 1, "admin_secret": "x"},
        "storage": {"bucket": "bucket"},
        "rules": [{"name": "everything", "state": "placeholder"}]})
    entry = ObservedEntry("0_aaaaaaaa", "n", "ann", "ann", 2, 1, 0, 0, None, 0, 10,
                          tags=frozenset({keep_tag(NOW + 86400)}))
    assert Decider(policy, NOW)(entry).rule == KEPT
    assert Decider(policy, NOW)(entry).state is DesiredState.UNMANAGED
    assert Decider(policy, NOW + 3 * 86400)(entry).rule == "everything"
