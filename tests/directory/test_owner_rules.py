"""A rule on the owner's standing, fed by the real directory: people who left are archived, and
nothing is archived because the directory is down."""

from __future__ import annotations

import pytest
from ldap_people import settings_for
from slapd import Slapd

from controller.adapters.ldap import Directory
from policies.desired import desired_state
from policies.loader import parse_policy
from policies.observed import ObservedEntry, OwnerStatus
from policies.schema import DesiredState, Policy

NOW = 1_700_000_000
POLICY = """\
version: 1
kaltura: {partner_id: 1, service_url: "http://127.0.0.1:1", admin_secret: s}
storage: {bucket: karchive-test}
rules:
  - name: owner-left
    match: {owner_status: inactive}
    state: archived
"""
OWNERS = ["alice@example.edu", "gary@example.edu", "dora@example.edu", "ghost@example.edu"]


@pytest.fixture
def policy() -> Policy:
    return parse_policy(POLICY, "policy.yaml")


def entries_owned_by(statuses: dict[str, OwnerStatus]) -> list[ObservedEntry]:
    return [
        ObservedEntry(
            entry_id=f"0_{i}", name="v", user_id=user, creator_id=user, status=2, media_type=1,
            created_at=NOW - 10**8, updated_at=NOW - 10**8, last_played_at=None, plays=0,
            duration=60, owner_status=status,
        )
        for i, (user, status) in enumerate(statuses.items())
    ]


def desired(policy: Policy, directory: Directory) -> dict[str, DesiredState]:
    found = directory.lookup(OWNERS)
    entries = entries_owned_by({user: info.status for user, info in found.items()})
    return {e.user_id: desired_state(e, policy, NOW).state for e in entries}


def test_only_the_videos_of_people_who_left_are_archived(
    policy: Policy, directory: Directory
) -> None:
    assert desired(policy, directory) == {
        "alice@example.edu": DesiredState.UNMANAGED,
        "gary@example.edu": DesiredState.UNMANAGED,  # going away is still active
        "dora@example.edu": DesiredState.ARCHIVED,
        "ghost@example.edu": DesiredState.ARCHIVED,  # gone from the directory
    }


def test_with_the_directory_down_nothing_is_archived(
    policy: Policy, private_slapd: Slapd
) -> None:
    settings = settings_for(private_slapd, retries=0)
    private_slapd.stop()
    with Directory(settings) as directory:
        assert set(desired(policy, directory).values()) == {DesiredState.UNMANAGED}
