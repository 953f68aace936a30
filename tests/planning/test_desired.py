"""Desired state: exemptions first, then the first matching rule, then restore_on_play."""

from __future__ import annotations

from typing import Any

import pytest
from planning_factory import NOW, YEAR, entry, placeholder, placeholder_flavor

from policies.desired import EXEMPT, NO_RULE, RESTORE_ON_PLAY, Decision, desired_state
from policies.observed import ObservedEntry
from policies.schema import DesiredState, Policy

ARCHIVED, PLACEHOLDER, UNMANAGED = (DesiredState.ARCHIVED, DesiredState.PLACEHOLDER,
                                    DesiredState.UNMANAGED)


def policy(**changes: Any) -> Policy:
    document: dict[str, Any] = {
        "version": 1,
        "kaltura": {"service_url": "http://k", "partner_id": 1, "admin_secret": "s"},
        "storage": {"bucket": "bkt"},
        "placeholder": "https://cdn.example/placeholder.mp4",
        "rules": [
            {"name": "keep-recent", "match": {"played_within": "1y"}, "state": "unmanaged"},
            {"name": "old", "match": {"unplayed_for": "3y"}, "state": "placeholder"},
            {"name": "rest", "state": "archived"},
        ],
    }
    return Policy.model_validate(document | changes)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (entry(), Decision(PLACEHOLDER, "old")),
        (entry(last_played_at=NOW - 10), Decision(UNMANAGED, "keep-recent")),
        (entry(last_played_at=NOW - 2 * YEAR), Decision(ARCHIVED, "rest")),
        (entry(tags=frozenset({"Archive_Exempt"})), Decision(UNMANAGED, EXEMPT)),
    ],
)
def test_first_matching_rule_wins_after_exemptions(subject: ObservedEntry,
                                                   expected: Decision) -> None:
    assert desired_state(subject, policy(), NOW) == expected


def test_no_matching_rule_means_unmanaged() -> None:
    decision = desired_state(entry(), policy(rules=[]), NOW)
    assert decision == Decision(UNMANAGED, NO_RULE) and not decision.managed


@pytest.mark.parametrize(
    ("exemptions", "expected"),
    [
        ({"categories": [11]}, Decision(UNMANAGED, EXEMPT)),
        ({"categories": ["Courses"]}, Decision(UNMANAGED, EXEMPT)),
        ({"categories": ["Other"]}, Decision(PLACEHOLDER, "old")),
        ({"tags": ["lecture"]}, Decision(UNMANAGED, EXEMPT)),
        ({"tags": []}, Decision(PLACEHOLDER, "old")),
    ],
)
def test_exemptions_by_tag_or_category(exemptions: dict[str, Any], expected: Decision) -> None:
    assert desired_state(entry(), policy(exemptions=exemptions), NOW) == expected


@pytest.mark.parametrize(
    ("last_played", "enabled", "expected"),
    [
        # Played after the swap (the placeholder flavor is a year old): bring it back.
        (NOW - 10, True, Decision(ARCHIVED, RESTORE_ON_PLAY)),
        (NOW - 10, False, Decision(UNMANAGED, "keep-recent")),
        # Played in the swap's own second (Kaltura's times are whole seconds): counted.
        (NOW - YEAR, True, Decision(ARCHIVED, RESTORE_ON_PLAY)),
        (NOW - YEAR - 1, True, Decision(ARCHIVED, "rest")),
        # Played before the swap: those plays were of the real video, not a request.
        (NOW - 2 * YEAR, True, Decision(ARCHIVED, "rest")),
        (None, True, Decision(ARCHIVED, "rest")),
    ],
)
def test_restore_on_play_brings_back_a_played_placeholder(
    last_played: int | None, enabled: bool, expected: Decision
) -> None:
    subject = placeholder(last_played_at=last_played, created_at=NOW - 2 * YEAR)
    assert desired_state(subject, policy(restore_on_play=enabled), NOW) == expected


def test_restore_on_play_ignores_entries_that_are_not_placeholders() -> None:
    not_replaced = entry(last_played_at=NOW - 10, flavors=(placeholder_flavor(),))
    assert desired_state(not_replaced, policy(restore_on_play=True), NOW).rule == "keep-recent"


def test_an_exempt_placeholder_is_left_alone_even_when_played() -> None:
    subject = placeholder(last_played_at=NOW - 10, tags=placeholder().tags | {"archive_exempt"})
    assert desired_state(subject, policy(restore_on_play=True), NOW) == Decision(UNMANAGED, EXEMPT)


@pytest.mark.parametrize(("media_type", "state"), [(1, PLACEHOLDER), (2, ARCHIVED), (5, ARCHIVED)])
def test_only_video_entries_get_the_placeholder(media_type: int, state: DesiredState) -> None:
    assert desired_state(entry(media_type=media_type), policy(), NOW) == Decision(state, "old")


def test_a_reloaded_policy_or_a_new_instant_is_never_answered_from_the_last_one() -> None:
    subject = entry()
    assert desired_state(subject, policy(), NOW).rule == "old"
    assert desired_state(subject, policy(rules=[]), NOW).rule == NO_RULE
    young = entry(created_at=NOW - 2 * YEAR, last_played_at=None, plays=0)
    reloaded = policy()
    assert desired_state(young, reloaded, NOW).rule == "rest"
    assert desired_state(young, reloaded, NOW + 2 * YEAR).rule == "old"
