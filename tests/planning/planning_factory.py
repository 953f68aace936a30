"""Builders of observed entries for the pure tests: one valid entry, changed by keywords."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from policies.observed import (
    TAG_ARCHIVED,
    TAG_REPLACED,
    ArchiveFacts,
    FlavorFacts,
    ObservedEntry,
    RestoreStatus,
)

NOW = 1_780_000_000  # 2026-05-28T20:26:40Z, a fixed planning instant
DAY = 86_400
YEAR = 365 * DAY
VIDEO_SIZE = 300_000_000
PLACEHOLDER_SIZE = 1_048_576
BOTH_TAGS = frozenset({TAG_ARCHIVED, TAG_REPLACED})


def flavor(**changes: Any) -> FlavorFacts:
    base = FlavorFacts(flavor_id="0_flav0001", flavor_params_id=0, is_original=True, status=2,
                       size_bytes=VIDEO_SIZE, file_ext="mp4", updated_at=NOW - 5 * YEAR)
    return replace(base, **changes)


def placeholder_flavor(**changes: Any) -> FlavorFacts:
    values: dict[str, Any] = {"flavor_id": "0_plac0001", "size_bytes": PLACEHOLDER_SIZE,
                              "updated_at": NOW - YEAR}
    return flavor(**(values | changes))


def archive(**changes: Any) -> ArchiveFacts:
    base = ArchiveFacts(key="karchive/0_entry001/original/0_flav0001.mp4", size_bytes=VIDEO_SIZE,
                        storage_class="GLACIER", restore=RestoreStatus.FROZEN,
                        layout="entry-folder", etag='"abc"', flavor_id="0_flav0001",
                        # the placeholder flavor karchive swapped in, as its marker records it
                        placeholder_flavor_ids=frozenset({"0_plac0001"}))
    return replace(base, **changes)


def entry(**changes: Any) -> ObservedEntry:
    """A READY video created 5 years ago, last played 4 years ago, untouched by karchive."""
    base = ObservedEntry(
        entry_id="0_entry001", name="Lecture 1", user_id="jdoe@example.edu",
        creator_id="jdoe@example.edu", status=2, media_type=1, created_at=NOW - 5 * YEAR,
        updated_at=NOW - 5 * YEAR, last_played_at=NOW - 4 * YEAR, plays=12, duration=3600,
        tags=frozenset({"lecture"}), category_ids=frozenset({11}),
        categories=("Courses>PHY101",), flavors=(flavor(),),
    )
    return replace(base, **changes)


def archived(**changes: Any) -> ObservedEntry:
    """An entry with a matching copy and archived_to_s3."""
    values: dict[str, Any] = {"tags": frozenset({"lecture", TAG_ARCHIVED}), "archive": archive()}
    return entry(**(values | changes))


def placeholder(**changes: Any) -> ObservedEntry:
    """An entry whose content was swapped for the placeholder a year ago."""
    values: dict[str, Any] = {
        "tags": frozenset({"lecture"}) | BOTH_TAGS,
        "archive": archive(),
        "flavors": (placeholder_flavor(),),
    }
    return entry(**(values | changes))
