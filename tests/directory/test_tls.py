"""ldaps:// against a slapd with a self-signed certificate: validated, never blindly trusted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ldap_people import KNOWN_PEOPLE, settings_for
from slapd import Slapd

from controller.adapters.ldap import Directory, DirectoryPermanentError, OwnerInfo
from policies.observed import OwnerStatus


@pytest.fixture(scope="module")
def ldaps_server() -> Iterator[Slapd]:
    with Slapd(KNOWN_PEOPLE, tls=True) as server:
        yield server


def test_ldaps_with_the_servers_ca_answers(ldaps_server: Slapd) -> None:
    assert ldaps_server.url.startswith("ldaps://")
    with Directory(settings_for(ldaps_server, ca_file=str(ldaps_server.ca_file))) as d:
        assert d.lookup(["zoe"]) == {
            "zoe": OwnerInfo(OwnerStatus.ACTIVE, "Zoë Ångström", "Mathématiques")
        }


def test_an_untrusted_certificate_is_refused_without_retries(ldaps_server: Slapd) -> None:
    sleeps: list[float] = []
    with Directory(settings_for(ldaps_server), sleep=sleeps.append) as d:
        assert d.lookup(["zoe"]) == {"zoe": OwnerInfo(OwnerStatus.UNKNOWN)}
        assert isinstance(d.last_error, DirectoryPermanentError)
        assert "directory.ca_file" in str(d.last_error)
    assert sleeps == []
