"""The directory adapter against a real slapd: statuses, escaping, batching, cache, failures."""

from __future__ import annotations

import logging
import math

import pytest
from ldap_people import BULK_PEOPLE, BULK_STATES, ODD_UID, FakeClock, bulk_uid, settings_for
from slapd import DISABLED, ENABLED, ROOT_DN, ROOT_PASSWORD, Slapd

from controller.adapters.ldap import (
    Directory,
    DirectoryPermanentError,
    DirectoryTransientError,
    OwnerInfo,
)
from policies.observed import OwnerStatus

ACTIVE, INACTIVE, UNKNOWN = OwnerStatus.ACTIVE, OwnerStatus.INACTIVE, OwnerStatus.UNKNOWN


@pytest.mark.parametrize(
    ("user_id", "expected"),
    [
        ("alice@example.edu", OwnerInfo(ACTIVE, "Alice Active", "Physics")),
        ("gary@example.edu", OwnerInfo(ACTIVE, "Gary Going", "Chemistry")),  # goingaway
        ("dora@example.edu", OwnerInfo(INACTIVE, "Dora Disabled", "History")),
        ("nora", OwnerInfo(INACTIVE, "Nora Nostatus", "Music")),  # no puresource at all
        ("zoe@example.edu", OwnerInfo(ACTIVE, "Zoë Ångström", "Mathématiques")),
        ("carl@example.edu", OwnerInfo(ACTIVE, "Carl Cnonly", "")),  # no displayName, no ou
        ("ALICE@example.edu", OwnerInfo(ACTIVE, "Alice Active", "Physics")),  # uid ignores case
        ("ghost@example.edu", OwnerInfo(INACTIVE)),  # gone from the directory
        ("", OwnerInfo(UNKNOWN)),  # no owner: nothing to ask, so nothing is known
    ],
)
def test_each_person_gets_the_status_name_and_org_unit_the_directory_holds(
    directory: Directory, user_id: str, expected: OwnerInfo
) -> None:
    assert directory.lookup([user_id]) == {user_id: expected}


def test_all_people_in_one_lookup_get_the_same_answers_as_one_by_one(
    directory: Directory, slapd_server: Slapd
) -> None:
    ids = ["alice", "gary", "dora", "nora", "zoe", "carl", "ghost", ODD_UID, "odette"]
    together = directory.lookup(ids)
    alone = {i: Directory(settings_for(slapd_server)).lookup([i])[i] for i in ids}
    assert together == alone
    assert directory.searches == 2  # one batch: who exists, then who of them is active


def test_a_uid_with_filter_special_characters_matches_only_its_own_person(
    directory: Directory,
) -> None:
    assert directory.lookup([ODD_UID]) == {ODD_UID: OwnerInfo(INACTIVE, "Odd Uid", "Computing")}


@pytest.mark.parametrize(
    "hostile",
    [
        "x)(uid=*",  # would turn (uid=x) into (uid=x)(uid=*): everyone
        "*",  # a presence match
        "o*",  # a substring match on odette and the odd uid
        "alice)(|(uid=*",
        "al\\2a",  # a pre-escaped wildcard must stay a literal backslash sequence
        "nul\x00l",
    ],
)
def test_a_hostile_user_id_is_a_literal_and_finds_no_one(
    directory: Directory, hostile: str
) -> None:
    assert directory.lookup([hostile]) == {hostile: OwnerInfo(INACTIVE)}


def test_a_lookup_keeps_the_user_ids_as_given_and_maps_domains_away(
    directory: Directory,
) -> None:
    got = directory.lookup(["alice@a.edu", "alice@b.edu", "alice"])
    assert set(got) == {"alice@a.edu", "alice@b.edu", "alice"}
    assert {info.status for info in got.values()} == {ACTIVE}
    assert directory.searches == 2  # the three ids are one uid


def test_as_is_mapping_looks_the_whole_user_id_up(slapd_server: Slapd) -> None:
    with Directory(settings_for(slapd_server, user_id_to_uid="as-is")) as d:
        assert d.lookup(["alice@example.edu", "alice"]) == {
            "alice@example.edu": OwnerInfo(INACTIVE),
            "alice": OwnerInfo(ACTIVE, "Alice Active", "Physics"),
        }


def test_custom_attributes_and_filter_are_honoured(slapd_server: Slapd) -> None:
    settings = settings_for(
        slapd_server,
        name_attributes=["cn"],
        org_unit_attribute="sn",
        active_filter="(&(uid={uid})(puresource=authentication=disabled))",
    )
    with Directory(settings) as d:
        got = d.lookup(["alice", "dora"])
    assert got == {
        "alice": OwnerInfo(INACTIVE, "Alice Active", "Active"),
        "dora": OwnerInfo(ACTIVE, "Dora Disabled", "Disabled"),
    }


@pytest.mark.parametrize("batch_size", [1, 7, 50, 500])
def test_distinct_owners_are_looked_up_in_batches_of_two_searches(
    slapd_server: Slapd, batch_size: int
) -> None:
    ids = [f"{bulk_uid(i)}@example.edu" for i in range(BULK_PEOPLE)]
    with Directory(settings_for(slapd_server, batch_size=batch_size)) as d:
        got = d.lookup(ids + ids[:100])  # repeated owners cost nothing more
        assert d.searches == 2 * math.ceil(BULK_PEOPLE / batch_size)
        assert d.binds == 1  # one connection, reused for every batch
    for i, user_id in enumerate(ids):
        expected = INACTIVE if BULK_STATES[i % 3] == DISABLED else ACTIVE
        assert got[user_id] == OwnerInfo(expected, f"Bulk Person {i}", "Bulk")


def test_a_batch_where_nobody_exists_costs_one_search(directory: Directory) -> None:
    assert directory.lookup(["ghost1", "ghost2"]) == {
        "ghost1": OwnerInfo(INACTIVE),
        "ghost2": OwnerInfo(INACTIVE),
    }
    assert directory.searches == 1


def test_answers_are_cached_until_the_ttl_passes(directory: Directory, clock: FakeClock) -> None:
    ids = [bulk_uid(i) for i in range(120)]
    first = directory.lookup(ids)
    cold = directory.searches
    assert cold == 2 * math.ceil(120 / 50)

    clock.now += 3599
    assert directory.lookup(ids) == first
    assert directory.searches == cold  # warm: no search at all

    clock.now += 2
    assert directory.lookup(ids[:60]) == {i: first[i] for i in ids[:60]}
    assert directory.searches == cold + 4  # expired: asked again, in 2 batches of 2 searches


def test_an_unreachable_directory_makes_every_owner_unknown_and_logs_once(
    private_slapd: Slapd, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps: list[float] = []
    settings = settings_for(private_slapd, batch_size=2, retries=2)
    private_slapd.stop()
    caplog.set_level(logging.WARNING, logger="karchive.directory")
    with Directory(settings, sleep=sleeps.append) as d:
        got = d.lookup(["alice", "gary", "dora", "zoe", "carl"])
        assert got == dict.fromkeys(["alice", "gary", "dora", "zoe", "carl"], OwnerInfo(UNKNOWN))
        assert isinstance(d.last_error, DirectoryTransientError)
        assert isinstance(d.last_error.__cause__, Exception)  # the ldap3 error, chained
    assert sleeps == [0.5, 1.0]  # two retries with backoff, then it gives up for all batches
    failures = [r for r in caplog.records if "lookup failed" in r.getMessage()]
    assert len(failures) == 1
    assert "5 owner(s)" in failures[0].getMessage()


def test_unknown_is_not_cached_and_a_restarted_directory_is_used_again(
    private_slapd: Slapd,
) -> None:
    clock = FakeClock()
    with Directory(settings_for(private_slapd, retries=0), clock=clock) as d:
        assert d.lookup(["alice"])["alice"].status is ACTIVE
        private_slapd.stop()  # drops the open connection under the adapter
        clock.now += 4000
        assert d.lookup(["alice"])["alice"].status is UNKNOWN
        private_slapd.start()  # same port
        assert d.lookup(["alice"])["alice"].status is ACTIVE
        assert d.last_error is None
        assert d.binds == 2


def test_a_dropped_connection_is_replaced_within_one_lookup(private_slapd: Slapd) -> None:
    clock = FakeClock()
    sleeps: list[float] = []
    with Directory(settings_for(private_slapd), clock=clock, sleep=sleeps.append) as d:
        d.lookup(["alice"])
        private_slapd.stop()
        private_slapd.start()  # the adapter's socket is now dead
        clock.now += 4000
        assert d.lookup(["alice", "dora"]) == {
            "alice": OwnerInfo(ACTIVE, "Alice Active", "Physics"),
            "dora": OwnerInfo(INACTIVE, "Dora Disabled", "History"),
        }
        assert d.binds == 2
        assert len(sleeps) <= 1


def test_an_authenticated_bind_reads_the_password_from_a_file(
    slapd_server: Slapd, tmp_path: pytest.TempPathFactory
) -> None:
    secret = tmp_path / "ldap-password"  # type: ignore[operator]
    secret.write_text(ROOT_PASSWORD + "\n")
    settings = settings_for(slapd_server, bind_dn=ROOT_DN, password_file=str(secret))
    with Directory(settings) as d:
        assert d.lookup(["alice"])["alice"].status is ACTIVE


def test_a_wrong_password_is_a_permanent_error_that_never_shows_the_password(
    slapd_server: Slapd, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-pass-123"
    settings = settings_for(slapd_server, bind_dn=ROOT_DN, password=wrong)
    sleeps: list[float] = []
    caplog.set_level(logging.DEBUG)
    with Directory(settings, sleep=sleeps.append) as d:
        assert d.lookup(["alice"]) == {"alice": OwnerInfo(UNKNOWN)}
        assert isinstance(d.last_error, DirectoryPermanentError)
        assert "bind_dn" in str(d.last_error)
    assert sleeps == []  # not retried
    assert wrong not in caplog.text
    assert ROOT_PASSWORD not in caplog.text


def test_a_missing_search_base_is_a_permanent_error_naming_the_setting(
    slapd_server: Slapd,
) -> None:
    with Directory(settings_for(slapd_server, base="o=nowhere,c=us")) as d:
        assert d.lookup(["alice"]) == {"alice": OwnerInfo(UNKNOWN)}
        assert isinstance(d.last_error, DirectoryPermanentError)
        assert "directory.base" in str(d.last_error)


def test_an_unreadable_password_file_is_refused_at_construction(
    slapd_server: Slapd, tmp_path: pytest.TempPathFactory
) -> None:
    missing = tmp_path / "absent"  # type: ignore[operator]
    settings = settings_for(slapd_server, bind_dn=ROOT_DN, password_file=str(missing))
    with pytest.raises(DirectoryPermanentError, match="password_file"):
        Directory(settings)


def test_bulk_statuses_alternate_as_loaded(directory: Directory) -> None:
    # Guards the fixture itself: if the bulk people were not loaded, the batching test would
    # pass on "not found" answers alone.
    got = directory.lookup([bulk_uid(0), bulk_uid(2)])
    assert BULK_STATES[0] == ENABLED and BULK_STATES[2] == DISABLED
    assert got[bulk_uid(0)] == OwnerInfo(ACTIVE, "Bulk Person 0", "Bulk")
    assert got[bulk_uid(2)] == OwnerInfo(INACTIVE, "Bulk Person 2", "Bulk")
