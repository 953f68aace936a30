"""Every selector of a rule's match, at and around its edges, and the reports' Selection."""

from __future__ import annotations

from typing import Any

import pytest
from planning_factory import DAY, NOW, VIDEO_SIZE, YEAR, entry, flavor, placeholder

from policies.durations import parse_duration
from policies.observed import ObservedEntry, OwnerStatus
from policies.schema import Match
from policies.selectors import Selection, SelectionError, matches

THREE_YEARS_AGO = parse_duration("3y").before(NOW)


def holds(match: dict[str, Any], subject: ObservedEntry) -> bool:
    return matches(Match.model_validate(match), subject, NOW)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        (entry(created_at=THREE_YEARS_AGO - 1, last_played_at=THREE_YEARS_AGO - 1), True),
        (entry(created_at=THREE_YEARS_AGO, last_played_at=THREE_YEARS_AGO), True),  # boundary
        (entry(created_at=THREE_YEARS_AGO - DAY, last_played_at=THREE_YEARS_AGO + 1), False),
        # Never played: counts from its creation, so an old one matches ...
        (entry(created_at=THREE_YEARS_AGO - DAY, last_played_at=None, plays=0), True),
        # ... and a young one does not, though it was never played.
        (entry(created_at=THREE_YEARS_AGO + 1, last_played_at=None, plays=0), False),
        (entry(created_at=NOW - DAY, last_played_at=None, plays=0), False),
    ],
)
def test_unplayed_for_counts_never_played_entries_from_creation(
    subject: ObservedEntry, expected: bool
) -> None:
    assert holds({"unplayed_for": "3y"}, subject) is expected


@pytest.mark.parametrize(
    ("last_played", "expected"),
    [(None, False), (NOW - YEAR + 1, True), (parse_duration("1y").before(NOW), False),
     (NOW - 2 * YEAR, False), (NOW, True)],
)
def test_played_within(last_played: int | None, expected: bool) -> None:
    assert holds({"played_within": "1y"}, entry(last_played_at=last_played)) is expected


@pytest.mark.parametrize(
    ("created", "before", "within"),
    [
        (THREE_YEARS_AGO - 1, True, False),
        (THREE_YEARS_AGO, True, False),  # exactly 3y ago counts as "before"
        (THREE_YEARS_AGO + 1, False, True),
        (NOW, False, True),
    ],
)
def test_created_before_and_within_split_time_at_the_boundary(
    created: int, before: bool, within: bool
) -> None:
    subject = entry(created_at=created)
    assert holds({"created_before": "3y"}, subject) is before
    assert holds({"created_within": "3y"}, subject) is within


@pytest.mark.parametrize(
    ("last_played", "plays", "wanted", "expected"),
    [
        (None, 0, True, True),
        (None, 0, False, False),
        (NOW - DAY, 1, True, False),
        (NOW - DAY, 1, False, True),
        # Plays counted before Kaltura tracked lastPlayedAt: played, though lastPlayedAt is null.
        (None, 7, True, False),
    ],
)
def test_never_played(last_played: int | None, plays: int, wanted: bool, expected: bool) -> None:
    subject = entry(last_played_at=last_played, plays=plays)
    assert holds({"never_played": wanted}, subject) is expected


@pytest.mark.parametrize(("plays", "expected"), [(0, True), (4, True), (5, False), (50, False)])
def test_plays_below_is_strict(plays: int, expected: bool) -> None:
    assert holds({"plays_below": 5}, entry(plays=plays)) is expected


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ([11], True),
        (["11"], True),
        ([99], False),
        (["Courses>PHY101"], True),
        (["courses>phy101"], True),  # names compare case-insensitively
        (["Courses"], True),  # a parent covers its children
        (["Cour"], False),  # but not a prefix of a name
        (["Courses>PHY101>Labs"], False),
        ([99, "Courses"], True),  # any of them
    ],
)
def test_categories_by_id_or_full_name(wanted: list[int | str], expected: bool) -> None:
    assert holds({"categories": wanted}, entry()) is expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"any": ["LECTURE", "x"]}, True),
        ({"any": ["lect"]}, False),  # whole tags only, never substrings
        ({"all": ["lecture", "physics"]}, True),
        ({"all": ["lecture", "maths"]}, False),
        ({"none": ["physics"]}, False),
        ({"none": ["keep"]}, True),
        ({"any": ["lecture"], "none": [" Physics "]}, False),
    ],
)
def test_tags_any_all_none(selector: dict[str, list[str]], expected: bool) -> None:
    subject = entry(tags=frozenset({"lecture", "physics"}))
    assert holds({"tags": selector}, subject) is expected


@pytest.mark.parametrize(
    ("owners", "expected"),
    [(["jdoe@example.edu"], True), (["JDoe@Example.edu"], True), (["jdoe"], False)],
)
def test_owners(owners: list[str], expected: bool) -> None:
    assert holds({"owners": owners}, entry()) is expected


@pytest.mark.parametrize(
    ("status", "wanted", "expected"),
    [
        (OwnerStatus.INACTIVE, "inactive", True),
        (OwnerStatus.ACTIVE, "inactive", False),
        (OwnerStatus.ACTIVE, "active", True),
        # The directory was down: the owner is unknown and matches neither value.
        (OwnerStatus.UNKNOWN, "inactive", False),
        (OwnerStatus.UNKNOWN, "active", False),
    ],
)
def test_owner_status_never_matches_an_unknown_owner(
    status: OwnerStatus, wanted: str, expected: bool
) -> None:
    assert holds({"owner_status": wanted}, entry(owner_status=status)) is expected


@pytest.mark.parametrize(
    ("statuses", "status", "expected"),
    [(["ready"], 2, True), (["READY", "pending"], 4, True), ([2], 7, False),
     (["no content"], 7, True), ([-1], -1, True)],
)
def test_statuses_by_name_or_number(statuses: list[Any], status: int, expected: bool) -> None:
    assert holds({"statuses": statuses}, entry(status=status)) is expected


@pytest.mark.parametrize(
    ("types", "media_type", "expected"),
    [(["video"], 1, True), (["audio"], 1, False), (["audio", "image"], 2, True)],
)
def test_media_types(types: list[str], media_type: int, expected: bool) -> None:
    assert holds({"media_types": types}, entry(media_type=media_type)) is expected


@pytest.mark.parametrize(
    ("match", "size", "expected"),
    [
        ({"min_size": VIDEO_SIZE}, VIDEO_SIZE, True),  # bounds are inclusive
        ({"min_size": VIDEO_SIZE + 1}, VIDEO_SIZE, False),
        ({"max_size": VIDEO_SIZE}, VIDEO_SIZE, True),
        ({"max_size": "100MB"}, VIDEO_SIZE, False),
        ({"min_size": "100MB", "max_size": "1GiB"}, VIDEO_SIZE, True),
    ],
)
def test_size_bounds_apply_to_the_original_flavor(match: dict[str, Any], size: int,
                                                  expected: bool) -> None:
    derived = flavor(flavor_id="0_derived1", is_original=False, size_bytes=10 * VIDEO_SIZE)
    subject = entry(flavors=(flavor(size_bytes=size), derived))
    assert holds(match, subject) is expected


@pytest.mark.parametrize(
    ("match", "expected"),
    [({"min_size": "100MB"}, True), ({"max_size": "100MB"}, False)],
)
def test_a_placeholder_is_sized_by_its_archived_video_not_the_placeholder(
        match: dict[str, Any], expected: bool) -> None:
    # Its original flavor is now the 1 MiB placeholder; the real video is the 300 MB copy.
    assert holds(match, placeholder()) is expected


def test_a_size_bound_never_holds_without_an_original_flavor() -> None:
    assert not holds({"max_size": "10GiB"}, entry(flavors=()))


def test_entry_ids() -> None:
    assert holds({"entry_ids": ["0_entry001", "0_other000"]}, entry())
    assert not holds({"entry_ids": ["0_other000"]}, entry())


def test_all_given_selectors_must_hold_and_an_empty_match_holds_for_all() -> None:
    assert holds({}, entry())
    assert holds({"plays_below": 50, "media_types": ["video"]}, entry())
    assert not holds({"plays_below": 50, "media_types": ["audio"]}, entry())


def test_selection_filters_like_a_rule() -> None:
    selection = Selection.from_options(
        {"unplayed_for": "3y", "tags": ["lecture", "!keep"], "plays_below": None}, NOW
    )
    keep = entry(entry_id="0_keep0001", tags=frozenset({"lecture", "keep"}))
    young = entry(entry_id="0_young001", created_at=NOW - DAY, last_played_at=None, plays=0)
    chosen = [e.entry_id for e in selection.filter([entry(), keep, young])]
    assert chosen == ["0_entry001"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"unplayed_for": "3yr"}, "--unplayed-for: '3yr' is not a duration; use a number and a "
         "unit, e.g. 3y, 18mo, 6w, 90d, 12h"),
        ({"statuses": ["redy"]}, "--statuses: 'redy' is not a status; use one of: "),
        ({"colour": "red"}, "--colour: is not a filter"),
    ],
)
def test_selection_errors_name_the_option(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SelectionError) as caught:
        Selection.from_options(options, NOW)
    assert str(caught.value).startswith(message)
