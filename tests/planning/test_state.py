"""Classification: every branch of the ladder, from Kaltura facts and the archive copy."""

from __future__ import annotations

import pytest
from planning_factory import (
    BOTH_TAGS,
    PLACEHOLDER_SIZE,
    VIDEO_SIZE,
    archive,
    archived,
    entry,
    flavor,
    placeholder,
    placeholder_flavor,
)

from policies.observed import TAG_ARCHIVED, TAG_REPLACED, ObservedEntry, RestoreStatus
from policies.state import (
    FIX_ADD_TAG,
    FIX_CONTENT_BACK,
    FIX_REPLACED_TAG,
    FIX_STALE_TAG,
    NOTE_LARGE,
    NOTE_PLACEHOLDER_SIZE,
    NOTE_THAWED,
    NOTE_THAWING,
    UNKNOWN_CONTENT,
    ObservedState,
    Repair,
    classify,
    with_legacy_placeholder,
)

ORIG, A, P, R, U = (ObservedState.ORIGINAL, ObservedState.ARCHIVED, ObservedState.PLACEHOLDER,
                 ObservedState.RESTORING, ObservedState.UNHEALTHY)
ONLY_ARCHIVED_TAG = frozenset({TAG_ARCHIVED})
ONLY_REPLACED_TAG = frozenset({TAG_REPLACED})


@pytest.mark.parametrize(
    ("subject", "state", "reason", "current"),
    [
        (entry(), ORIG, "not archived", False),
        (archived(), A, "archive copy matches the original", True),
        (placeholder(), P, "content is the placeholder", False),
        # A legacy (Princeton) copy nobody verified proves nothing, whatever its size ...
        (archived(archive=archive(key="0_entry001", layout="legacy", flavor_id=None)), ORIG,
         "archive copy not verified against the original", False),
        # ... until karchive proved it holds the current original (a verified marker).
        (archived(archive=archive(key="0_entry001", layout="legacy")), A,
         "archive copy matches the original", True),
        # Emptied by the old tool (no flavors left) with its copy: the one recoverable state.
        (archived(status=7, flavors=(), archive=archive(key="0_entry001", layout="legacy",
                                                         flavor_id=None)), U,
         "no content in Kaltura; the archive copy can bring it back", False),
        (placeholder(flavors=(flavor(status=-1),)), U,
         "no content in Kaltura; the archive copy can bring it back", False),
        # Edited after archival, same size, new flavor id: must be archived again.
        (archived(flavors=(flavor(flavor_id="0_newflav1"),)), ORIG,
         "original changed since it was archived", False),
        (archived(flavors=(flavor(size_bytes=VIDEO_SIZE + 1),)), ORIG,
         "original changed since it was archived", False),
        # An old copy with no tag: not archived yet.
        (entry(archive=archive(size_bytes=VIDEO_SIZE - 5)), ORIG,
         "archive copy does not match the original", False),
        (entry(status=4), U, "entry status PENDING", False),
        (entry(status=-1), U, "entry status ERROR_CONVERTING", False),
        (entry(status=7, flavors=()), U, "entry status NO_CONTENT", False),
        (entry(flavors=()), U, "no original flavor", False),
        (entry(flavors=(flavor(is_original=False),)), U, "no original flavor", False),
        (entry(flavors=(flavor(status=1),)), U, "original flavor status CONVERTING", False),
        (entry(replacement_status=4), U, "replacement failed", False),
        (archived(replacement_status=4), U, "replacement failed", False),
        (archived(replacement_status=1), R, "replacement in progress", False),
        (placeholder(replacement_status=3), R, "restore in progress", False),
        # A replacement in flight on an untagged entry is someone else's edit.
        (entry(replacement_status=2), U, "replacement in progress not started by karchive", False),
        # A replacement in flight is recognised before the status check (the entry may read
        # as not READY while Kaltura swaps).
        (archived(replacement_status=1, status=4), R, "replacement in progress", False),
        (entry(tags=BOTH_TAGS, flavors=(placeholder_flavor(),)), U,
         "placeholder with no archive copy: content may be lost", False),
        (entry(tags=ONLY_REPLACED_TAG, flavors=(placeholder_flavor(),)), U,
         "flavors_deleted without an archive copy", False),
        # Both tags, a copy, but content that is neither the placeholder nor the archived video.
        (placeholder(flavors=(flavor(flavor_id="0_newvid01", size_bytes=123),)), U,
         "content is neither the placeholder nor the archived video", False),
    ],
)
def test_classification(subject: ObservedEntry, state: ObservedState, reason: str,
                        current: bool) -> None:
    observed = classify(subject, PLACEHOLDER_SIZE)
    assert (observed.state, observed.reason, observed.archive_current) == (state, reason, current)
    assert observed.repair is None


@pytest.mark.parametrize(
    ("subject", "state", "repair"),
    [
        # Tag without a copy, content still real: only the tag is wrong.
        (entry(tags=ONLY_ARCHIVED_TAG), ORIG,
         Repair(FIX_STALE_TAG, remove=frozenset({TAG_ARCHIVED}))),
        # Upload done, tag not: an archive interrupted between the two.
        (entry(archive=archive()), ORIG, Repair(FIX_ADD_TAG, add=frozenset({TAG_ARCHIVED}))),
        # flavors_deleted, copy present, archived_to_s3 lost (tags are user-editable).
        (placeholder(tags=ONLY_REPLACED_TAG), P,
         Repair(FIX_ADD_TAG, add=frozenset({TAG_ARCHIVED}))),
        # The content came back (same size as the copy) but flavors_deleted stayed.
        (placeholder(flavors=(flavor(flavor_id="0_restored"),)), A,
         Repair(FIX_CONTENT_BACK, remove=frozenset({TAG_REPLACED}))),
        (placeholder(tags=ONLY_REPLACED_TAG, flavors=(flavor(flavor_id="0_restored"),)), A,
         Repair(FIX_CONTENT_BACK, add=frozenset({TAG_ARCHIVED}), remove=frozenset({TAG_REPLACED}))),
        # Placeholder content under archived_to_s3 alone: a replace cut short before its last tag.
        (archived(flavors=(placeholder_flavor(),)), P,
         Repair(FIX_REPLACED_TAG, add=frozenset({TAG_REPLACED}))),
    ],
)
def test_safe_tag_repairs(subject: ObservedEntry, state: ObservedState, repair: Repair) -> None:
    observed = classify(subject, PLACEHOLDER_SIZE)
    assert (observed.state, observed.repair) == (state, repair)


def test_size_alone_never_makes_content_the_placeholder() -> None:
    # Both tags, the placeholder's size, but not the flavor karchive recorded: reported.
    lookalike = placeholder(flavors=(placeholder_flavor(flavor_id="0_newvid01"),))
    assert classify(lookalike, PLACEHOLDER_SIZE).reason == UNKNOWN_CONTENT
    # Edited to the placeholder's exact size under archived_to_s3: archived again, with a note.
    edited = archived(flavors=(placeholder_flavor(flavor_id="0_newvid01"),))
    observed = classify(edited, PLACEHOLDER_SIZE)
    assert (observed.state, observed.reason) == (ORIG, "original changed since it was archived")
    assert NOTE_PLACEHOLDER_SIZE in observed.notes
    # The recorded placeholder flavor is one whatever the placeholder size setting says.
    assert classify(placeholder(), None).state is P
    # ... and an interrupted replace (marker written, last tag not) is a placeholder to finish.
    cut_short = archived(flavors=(placeholder_flavor(),))
    assert classify(cut_short, None).repair == Repair(FIX_REPLACED_TAG,
                                                      add=frozenset({TAG_REPLACED}))


def test_a_placeholder_the_same_size_as_its_video_is_still_a_placeholder() -> None:
    same = placeholder(archive=archive(size_bytes=PLACEHOLDER_SIZE))
    assert classify(same, PLACEHOLDER_SIZE).state is ObservedState.PLACEHOLDER


@pytest.mark.parametrize(
    ("restore", "notes"),
    [(RestoreStatus.FROZEN, ()), (RestoreStatus.READABLE, ()),
     (RestoreStatus.THAWING, (NOTE_THAWING,)), (RestoreStatus.THAWED, (NOTE_THAWED,))],
)
def test_a_thawing_placeholder_is_still_a_placeholder(restore: RestoreStatus,
                                                      notes: tuple[str, ...]) -> None:
    observed = classify(placeholder(archive=archive(restore=restore)), PLACEHOLDER_SIZE)
    assert (observed.state, observed.notes) == (ObservedState.PLACEHOLDER, notes)


def test_a_copy_over_the_size_limit_is_a_warning_not_a_failure() -> None:
    big = 10_000_000 * 1024 + 1
    subject = archived(flavors=(flavor(size_bytes=big),), archive=archive(size_bytes=big))
    observed = classify(subject, PLACEHOLDER_SIZE)
    assert (observed.state, observed.notes) == (ObservedState.ARCHIVED, (NOTE_LARGE,))
    at_limit = 10_000_000 * 1024
    subject = archived(flavors=(flavor(size_bytes=at_limit),), archive=archive(size_bytes=at_limit))
    assert classify(subject, PLACEHOLDER_SIZE).notes == ()


def test_a_princeton_placeholder_is_proven_by_its_tags_and_its_size_together() -> None:
    legacy = archive(key="0_entry001", layout="legacy", flavor_id=None,
                     placeholder_flavor_ids=frozenset())
    theirs = placeholder(archive=legacy,
                         flavors=(flavor(flavor_id="0_theirph1", size_bytes=777_777),))
    # The observer adds the proof when the policy names the old tool's placeholder size.
    assert classify(with_legacy_placeholder(theirs, 777_777), PLACEHOLDER_SIZE).state is P
    assert classify(with_legacy_placeholder(theirs, 777_778), PLACEHOLDER_SIZE).state is U
    assert classify(with_legacy_placeholder(theirs, None), PLACEHOLDER_SIZE).state is U
    # The tags alone (one missing) or another layout prove nothing.
    one_tag = placeholder(archive=legacy, tags=ONLY_REPLACED_TAG, flavors=theirs.flavors)
    assert with_legacy_placeholder(one_tag, 777_777) == one_tag
    # Its content back at the copy's size is still recognised as restored.
    back = placeholder(archive=legacy, flavors=(flavor(flavor_id="0_restored"),))
    assert classify(with_legacy_placeholder(back, 777_777), PLACEHOLDER_SIZE).state is A


