"""eSearch and media.list agree on the seeded catalogue for equivalent filters (one index).

Each case asks both APIs, through the real client, for the same entries: media.list with its
filter (the moderation default lifted with ``moderationStatusIn``, since eSearch has none), and
eSearch with the equivalent items and ``objectStatuses``. Both answer the same set of ids; a
case that matches nothing is refused, so no case can pass by agreeing on nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from esearch_helpers import (
    ALL_BUT_DELETED,
    AND,
    EXACT,
    NOT,
    OR,
    RANGE,
    category,
    every_id,
    item,
    op,
)
from KalturaClient.Plugins.Core import KalturaFilterPager, KalturaMediaEntryFilter

from sandbox.catalogue import ARCHIVED_TAG, PLACEHOLDER_TAG, LegacyKind

YEAR = 365 * 24 * 3600
MODERATION_ANY = "1,2,3,4,5,6"


def listed(client: Any, **fields: Any) -> set[str]:
    """Every entry media.list answers for the filter (it fits under the 10,000 cap)."""
    entry_filter = KalturaMediaEntryFilter(moderationStatusIn=MODERATION_ANY, **fields)
    found: set[str] = set()
    for index in range(1, 21):
        page = client.media.list(entry_filter, KalturaFilterPager(pageSize=500, pageIndex=index))
        found |= {e.id for e in page.objects}
        if len(page.objects) < 500:
            return found
    raise AssertionError("more than 10,000 entries: pick a narrower case")


def _cases(now: int) -> dict[str, tuple[Callable[[Any], set[str]], Any, str]]:
    """name -> (media.list side, eSearch operator, objectStatuses)."""
    three_years = now - 3 * YEAR
    return {
        "tag, any status": (
            lambda c: listed(c, tagsLike=ARCHIVED_TAG, statusIn=ALL_BUT_DELETED),
            op(AND, item("tags", EXACT, ARCHIVED_TAG)), ALL_BUT_DELETED),
        "both tags, READY": (
            lambda c: listed(c, tagsMultiLikeAnd=f"{ARCHIVED_TAG},{PLACEHOLDER_TAG}"),
            op(AND, item("tags", EXACT, ARCHIVED_TAG), item("tags", EXACT, PLACEHOLDER_TAG)),
            ""),
        "archived but not replaced": (
            lambda c: listed(c, tagsLike=ARCHIVED_TAG) - listed(c, tagsLike=PLACEHOLDER_TAG),
            op(AND, item("tags", EXACT, ARCHIVED_TAG),
               op(NOT, item("tags", EXACT, PLACEHOLDER_TAG))), ""),
        "unplayed for three years, created long ago": (
            lambda c: listed(c, lastPlayedAtLessThanOrEqual=three_years,
                             createdAtLessThanOrEqual=now - 8 * YEAR),
            op(AND, item("last_played_at", RANGE, lessThanOrEqual=three_years),
               item("created_at", RANGE, lessThanOrEqual=now - 8 * YEAR)), ""),
        "never played or not for three years, audio": (
            lambda c: listed(c, lastPlayedAtLessThanOrEqualOrNull=three_years, mediaTypeEqual=5),
            op(AND, item("media_type", EXACT, "5"),
               op(OR, item("last_played_at", RANGE, lessThanOrEqual=three_years),
                  op(NOT, item("last_played_at", 4)))), ""),
        "created in a window, NO_CONTENT or READY": (
            lambda c: listed(c, createdAtGreaterThanOrEqual=now - 6 * YEAR,
                             createdAtLessThanOrEqual=now - 5 * YEAR, statusIn="2,7"),
            op(AND, item("created_at", RANGE, greaterThanOrEqual=now - 6 * YEAR,
                         lessThanOrEqual=now - 5 * YEAR)), "2,7"),
        "in a category": (
            lambda c: listed(c, categoriesIdsMatchOr="105"),
            op(AND, category("id", EXACT, "105")), ""),
    }


@pytest.mark.parametrize("case", list(_cases(0)))
def test_esearch_and_media_list_return_the_same_entries(sandbox: Any, kaltura_client: Any,
                                                        case: str) -> None:
    media_list, operator, statuses = _cases(int(time.time()))[case]
    expected = media_list(kaltura_client)
    assert expected, f"{case}: matches nothing, so it proves nothing"
    found = every_id(kaltura_client, operator, objectStatuses=statuses)
    assert len(found) == len(set(found))  # pages never repeat an entry
    assert set(found) == expected


def test_an_owner_is_found_by_user_id_in_both(sandbox: Any, kaltura_client: Any) -> None:
    owner = max(sandbox.backend.users, key=lambda uid: sum(
        e.user_id == uid for e in sandbox.backend.all_entries()))
    expected = listed(kaltura_client, userIdEqual=owner)
    assert len(expected) > 5
    assert set(every_id(kaltura_client, op(AND, item("kuser_id", EXACT, owner)))) == expected


def test_the_princeton_selection_finds_its_own_entries(sandbox: Any, kaltura_client: Any) -> None:
    # What the Princeton tool asks for "replace": video, tagged archived_to_s3 and not yet
    # flavors_deleted, in its default statuses. A PARTIAL tag search: its 3-gram match also
    # takes tags that merely look alike, so the tool's result holds more than its own entries.
    operator = op(AND, item("media_type", EXACT, "1"), item("tags", 2, ARCHIVED_TAG),
                  op(NOT, item("tags", 2, PLACEHOLDER_TAG)))
    found = set(every_id(kaltura_client, operator, objectStatuses="-1,-2,0,1,2,7,4"))
    summary = sandbox.summary
    mine = {i for kind in (LegacyKind.ARCHIVED, LegacyKind.TAG_WITHOUT_OBJECT,
                           LegacyKind.SIZE_MISMATCH, LegacyKind.EMPTIED_BY_REPLACE)
            for i in summary.legacy_ids(kind)
            if sandbox.backend.entries[i].media_type == 1}
    assert mine and mine <= found
    look_alike = {sandbox.backend.entries[i].tags for i in found - mine}
    assert all("archive" in tags for tags in look_alike)  # archive_exempt, say
