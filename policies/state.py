"""Observed state: what one entry IS, from its Kaltura facts and its archive copy.

The first step of the pure core: ``classify`` reads an :class:`ObservedEntry` (filled by the
adapters) and names its state — original, archived, placeholder, restoring or unhealthy (the
states and invariants of design.md) — with a short stable reason, whether the archive copy
matches the current original, and any safe tag fix that is pending. The planner and
``karchive health`` consume it. An early-return ladder, one comment per branch, no side effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from policies.observed import (
    TAG_ARCHIVED,
    TAG_REPLACED,
    ArchiveFacts,
    FlavorFacts,
    ObservedEntry,
    RestoreStatus,
)

READY = 2  # KalturaEntryStatus.READY and KalturaFlavorAssetStatus.READY
REPLACEMENT_FAILED = 4
REPLACEMENT_IN_FLIGHT = frozenset({1, 2, 3})  # APPROVED_BUT_NOT_READY, READY_BUT_NOT_APPROVED,
# NOT_READY_AND_NOT_APPROVED (reference/kaltura-api.md §8)
# The Princeton tool's limit on a copy (10,000,000 KB): past it, a warning, not a failure.
LARGE_COPY_BYTES = 10_000_000 * 1024

_ENTRY_STATUS_NAMES = {
    -2: "ERROR_IMPORTING", -1: "ERROR_CONVERTING", 0: "IMPORT", 1: "PRECONVERT", 2: "READY",
    3: "DELETED", 4: "PENDING", 5: "MODERATE", 6: "BLOCKED", 7: "NO_CONTENT",
}  # fmt: skip
_FLAVOR_STATUS_NAMES = {
    -1: "ERROR", 0: "QUEUED", 1: "CONVERTING", 2: "READY", 3: "DELETED", 4: "NOT_APPLICABLE",
    5: "TEMP", 6: "WAIT_FOR_CONVERT", 7: "IMPORTING", 8: "VALIDATING", 9: "EXPORTING",
}  # fmt: skip


class ObservedState(StrEnum):
    ORIGINAL = "original"  # the real video, no (current) verified copy
    ARCHIVED = "archived"  # the real video and a copy that matches it
    PLACEHOLDER = "placeholder"  # the placeholder video, the real one in the archive
    RESTORING = "restoring"  # a content replacement is under way in Kaltura
    UNHEALTHY = "unhealthy"  # breaks an invariant: reported, never acted on blindly


# Reasons: short and stable, for the plan, `karchive health` and the tests.
NOT_ARCHIVED = "not archived"
ARCHIVED_OK = "archive copy matches the original"
PLACEHOLDER_OK = "content is the placeholder"
EDITED_AFTER_ARCHIVAL = "original changed since it was archived"
STALE_COPY = "archive copy does not match the original"
REPLACING = "replacement in progress"
RESTORING = "restore in progress"
REPLACEMENT_FAILED_REASON = "replacement failed"
FOREIGN_REPLACEMENT = "replacement in progress not started by karchive"
NO_ORIGINAL = "no original flavor"
LOST_CONTENT = "placeholder with no archive copy: content may be lost"
REPLACED_WITHOUT_COPY = "flavors_deleted without an archive copy"
UNKNOWN_CONTENT = "content is neither the placeholder nor the archived video"
FIX_STALE_TAG = "remove stale archived_to_s3 tag"
FIX_ADD_TAG = "tag archived_to_s3"
FIX_REPLACED_TAG = "tag flavors_deleted: the content is the placeholder"
FIX_CONTENT_BACK = "remove flavors_deleted: the content is back"
NOTE_LARGE = "archive copy over 10,000,000 KB"
NOTE_THAWING = "archive copy is being thawed"
NOTE_THAWED = "archive copy is thawed"


@dataclass(frozen=True, slots=True)
class Repair:
    """A tag fix that is always safe: it changes what the tags claim, never any content."""

    reason: str
    add: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Observation:
    """The classification of one entry."""

    state: ObservedState
    reason: str
    archive_current: bool = False  # the copy matches the current original (flavor id, size)
    repair: Repair | None = None
    notes: tuple[str, ...] = ()


def copy_matches(copy: ArchiveFacts, original: FlavorFacts) -> bool:
    """Same size, and the same flavor id where the copy records one (a legacy object may not):
    a video edited after archival has a new flavor id even when its size is the same."""
    if copy.size_bytes != original.size_bytes:
        return False
    return copy.flavor_id is None or copy.flavor_id == original.flavor_id


def _notes(entry: ObservedEntry) -> tuple[str, ...]:
    copy = entry.archive
    if copy is None:
        return ()
    notes = []
    if copy.size_bytes > LARGE_COPY_BYTES:
        notes.append(NOTE_LARGE)
    if copy.restore is RestoreStatus.THAWING:
        notes.append(NOTE_THAWING)
    elif copy.restore is RestoreStatus.THAWED:
        notes.append(NOTE_THAWED)
    return tuple(notes)


def classify(entry: ObservedEntry, placeholder_size: int | None) -> Observation:
    """Name the state of ``entry``. ``placeholder_size`` (bytes) tells the placeholder video
    apart from other content; ``None`` when unknown (then only the copy's size is compared)."""
    notes = _notes(entry)
    tagged = TAG_ARCHIVED in entry.tags
    replaced = TAG_REPLACED in entry.tags
    copy = entry.archive
    original = entry.original

    def unhealthy(reason: str) -> Observation:
        return Observation(ObservedState.UNHEALTHY, reason, notes=notes)

    # A failed replacement needs a person: Kaltura will not retry it and the entry is stuck.
    if entry.replacement_status == REPLACEMENT_FAILED:
        return unhealthy(REPLACEMENT_FAILED_REASON)
    # A replacement in flight on a tagged entry is one of ours: a replace or a restore under way.
    if entry.replacement_status in REPLACEMENT_IN_FLIGHT:
        if not (tagged or replaced):
            return unhealthy(FOREIGN_REPLACEMENT)
        return Observation(ObservedState.RESTORING, RESTORING if replaced else REPLACING,
                           notes=notes)
    # Not READY (importing, converting, errored, moderated...): nothing is safe to do.
    if entry.status != READY:
        return unhealthy(f"entry status {_ENTRY_STATUS_NAMES.get(entry.status, entry.status)}")
    # Without a READY original there is nothing to copy and nothing to compare a copy with.
    if original is None:
        return unhealthy(NO_ORIGINAL)
    if original.status != READY:
        status = _FLAVOR_STATUS_NAMES.get(original.status, original.status)
        return unhealthy(f"original flavor status {status}")
    # The tag claims a copy the bucket does not hold.
    if tagged and copy is None:
        if replaced:
            return unhealthy(LOST_CONTENT)
        return Observation(ObservedState.ORIGINAL, NOT_ARCHIVED,
                           repair=Repair(FIX_STALE_TAG, remove=frozenset({TAG_ARCHIVED})),
                           notes=notes)
    # flavors_deleted with no copy anywhere: the real video may be gone.
    if replaced and copy is None:
        return unhealthy(REPLACED_WITHOUT_COPY)
    # No tags and no copy: an entry karchive never touched.
    if copy is None:
        return Observation(ObservedState.ORIGINAL, NOT_ARCHIVED, notes=notes)
    current = copy_matches(copy, original)
    if not replaced:
        # A matching copy with no tag: an archive interrupted between upload and tag.
        if not tagged and current:
            return Observation(ObservedState.ORIGINAL, NOT_ARCHIVED, archive_current=True,
                               repair=Repair(FIX_ADD_TAG, add=frozenset({TAG_ARCHIVED})),
                               notes=notes)
        # Placeholder content under archived_to_s3 alone: a replace interrupted before its last tag.
        if tagged and not current and original.size_bytes == placeholder_size:
            return Observation(ObservedState.PLACEHOLDER, PLACEHOLDER_OK,
                               repair=Repair(FIX_REPLACED_TAG, add=frozenset({TAG_REPLACED})),
                               notes=notes)
        # The copy is of an older version (or of nothing we can match): archive again first.
        if not current:
            reason = EDITED_AFTER_ARCHIVAL if tagged else STALE_COPY
            return Observation(ObservedState.ORIGINAL, reason, notes=notes)
        # Tagged, copy matches: archived.
        return Observation(ObservedState.ARCHIVED, ARCHIVED_OK, archive_current=True, notes=notes)
    # From here: flavors_deleted and a copy. A missing archived_to_s3 is added back.
    add = frozenset() if tagged else frozenset({TAG_ARCHIVED})
    is_placeholder = placeholder_size is not None and original.size_bytes == placeholder_size
    # The real video is back (a restore finished, the untag did not): drop flavors_deleted.
    if original.size_bytes == copy.size_bytes and not is_placeholder:
        repair = Repair(FIX_CONTENT_BACK, add=add, remove=frozenset({TAG_REPLACED}))
        return Observation(ObservedState.ARCHIVED, ARCHIVED_OK, archive_current=current,
                           repair=repair, notes=notes)
    # Known placeholder size and the content is neither: someone uploaded something new. A
    # legacy (Princeton) copy was replaced by that tool's own placeholder, of another size: its
    # rule, "replaced means the sizes differ", is all that can be checked.
    if placeholder_size is not None and not is_placeholder and copy.layout != "legacy":
        return unhealthy(UNKNOWN_CONTENT)
    # Both tags (or a fixable one), a copy, placeholder content: a placeholder.
    fix = Repair(FIX_ADD_TAG, add=add) if add else None
    return Observation(ObservedState.PLACEHOLDER, PLACEHOLDER_OK, repair=fix, notes=notes)
