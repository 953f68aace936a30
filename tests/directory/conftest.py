"""Fixtures for the directory tests: a real slapd on loopback, seeded with the people below.

The session server is shared and never stopped by a test; a test that stops or restarts a
server asks for ``private_slapd``, its own instance.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ldap_people import KNOWN_PEOPLE, FakeClock, all_people, settings_for
from slapd import Slapd

from controller.adapters.ldap import Directory


@pytest.fixture(scope="session")
def slapd_server() -> Iterator[Slapd]:
    with Slapd(all_people()) as server:
        yield server


@pytest.fixture
def private_slapd() -> Iterator[Slapd]:
    with Slapd(KNOWN_PEOPLE) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def directory(slapd_server: Slapd, clock: FakeClock, sleeps: list[float]) -> Iterator[Directory]:
    with Directory(settings_for(slapd_server), clock=clock, sleep=sleeps.append) as d:
        yield d

