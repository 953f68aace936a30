"""The people the directory tests and the LDAP benchmark load into slapd, and their settings."""

from __future__ import annotations

from slapd import DISABLED, ENABLED, GOING_AWAY, SUFFIX, Person, Slapd

from policies.directory import DirectorySettings

ODD_UID = "o(b)*\\x"  # every RFC 4515 special character: ( ) * and backslash
KNOWN_PEOPLE = [
    Person("alice", "Alice Active", "Alice Active", "Physics", ENABLED),
    Person("gary", "Gary Going", "Gary Going", "Chemistry", GOING_AWAY),
    Person("dora", "Dora Disabled", "Dora Disabled", "History", DISABLED),
    Person("nora", "Nora Nostatus", "Nora Nostatus", "Music", None),
    Person("zoe", "Zoe Angstrom", "Zoë Ångström", "Mathématiques", ENABLED),
    Person("carl", "Carl Cnonly", None, None, ENABLED),
    Person(ODD_UID, "Odd Uid", "Odd Uid", "Computing", DISABLED),
    Person("odette", "Odette Other", "Odette Other", "Computing", ENABLED),
]
BULK_PEOPLE = 2000  # bulk0000 … bulk1999; every third one disabled
BULK_STATES = (ENABLED, GOING_AWAY, DISABLED)


def bulk_uid(i: int) -> str:
    return f"bulk{i:04d}"


def all_people() -> list[Person]:
    bulk = [
        Person(bulk_uid(i), f"Bulk Person{i}", f"Bulk Person {i}", "Bulk", BULK_STATES[i % 3])
        for i in range(BULK_PEOPLE)
    ]
    return KNOWN_PEOPLE + bulk


def settings_for(server: Slapd, **overrides: object) -> DirectorySettings:
    # The Princeton default filter is kept: the test schema defines puresource.
    values: dict[str, object] = {"url": server.url, "base": SUFFIX, "timeout": 5.0}
    values.update(overrides)
    return DirectorySettings.model_validate(values)


class FakeClock:
    """A monotonic clock the test moves by hand, for cache TTLs."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
