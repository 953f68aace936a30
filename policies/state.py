"""Observed state: what one entry IS, from its Kaltura facts and its archive copy.

The first step of the pure core: ``classify`` reads an :class:`ObservedEntry` (filled by the
adapters) and names its state — original, archived, placeholder, restoring or unhealthy (the
states and invariants of design.md) — with a short stable reason, whether the archive copy
matches the current original, and any safe tag fix that is pending. The planner and
``karchive health`` consume it. An early-return ladder, one comment per branch, no side effects.

Nothing is taken on trust (design.md invariants 2 and 6): a copy is current only when it is
PROVEN to hold the current original (its flavor id from karchive's key or a ``verified`` marker;
a bare-id copy nobody verified proves nothing, whatever its size), and the content is the
placeholder only when a ``placeholder`` marker names its flavor (or, for the Princeton tool's,
its two tags and ``legacy_placeholder_size`` together). Size alone never decides. An entry the
old tool emptied, with the copy it made, is the one unhealthy state flagged ``recoverable``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from policies.layout import LEGACY
from policies.observed import (
    TAG_ARCHIVED,
    TAG_REPLACED,
    ArchiveFacts,
    FlavorFacts,
    ObservedEntry,
    RestoreStatus,
)

READY = 2  # KalturaEntryStatus.READY and KalturaFlavorAssetStatus.READY
NO_CONTENT = 7  # KalturaEntryStatus.NO_CONTENT: the last READY flavor was deleted
# Flavor statuses that will never become READY by themselves: ERROR, DELETED, NOT_APPLICABLE.
DEAD_FLAVOR = frozenset({-1, 3, 4})
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
UNVERIFIED_COPY = "archive copy not verified against the original"
EMPTIED = "no content in Kaltura; the archive copy can bring it back"
FIX_STALE_TAG = "remove stale archived_to_s3 tag"
FIX_ADD_TAG = "tag archived_to_s3"
FIX_REPLACED_TAG = "tag flavors_deleted: the content is the placeholder"
FIX_CONTENT_BACK = "remove flavors_deleted: the content is back"
NOTE_LARGE = "archive copy over 10,000,000 KB"
NOTE_THAWING = "archive copy is being thawed"
NOTE_THAWED = "archive copy is thawed"
NOTE_UNVERIFIED = "archive copy left by another tool, not verified yet"
NOTE_PLACEHOLDER_SIZE = "content has the placeholder's size; nothing proves it is the placeholder"


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
    recoverable: bool = False  # unhealthy, but the copy can bring the content back (recover)


def copy_matches(copy: ArchiveFacts, original: FlavorFacts) -> bool:
    """The copy is PROVEN to hold the current original: same size and the same flavor id — a
    video edited after archival has a new flavor id even when its size is the same. A copy with
    no flavor id (a bare-id object nobody verified) proves nothing, whatever its size."""
    return copy.flavor_id == original.flavor_id and copy.size_bytes == original.size_bytes


def legacy_placeholder(tags: frozenset[str], original: FlavorFacts | None, copy_layout: str,
                       legacy_size: int | None) -> bool:
    """A placeholder the Princeton tool swapped in: both of its tags on an entry whose copy is a
    bare-id object, and an original of exactly that tool's placeholder size (policy
    ``legacy_placeholder_size``). The tags alone are user-editable and the size alone is a
    coincidence waiting to happen; only both together are taken as proof."""
    return (
        legacy_size is not None
        and original is not None
        and copy_layout == LEGACY
        and {TAG_ARCHIVED, TAG_REPLACED} <= tags
        and original.size_bytes == legacy_size
    )


def is_placeholder(entry: ObservedEntry) -> bool:
    """The entry's content is PROVEN to be the placeholder: its original is a flavor karchive
    recorded as the placeholder it swapped in (a marker beside the copy; the observer adds the
    Princeton tool's placeholders by :func:`legacy_placeholder`). Size never decides."""
    original, copy = entry.original, entry.archive
    return original is not None and copy is not None \
        and original.flavor_id in copy.placeholder_flavor_ids


def with_legacy_placeholder(entry: ObservedEntry, legacy_size: int | None) -> ObservedEntry:
    """``entry`` with its original recorded as a placeholder when :func:`legacy_placeholder`
    proves the Princeton tool put it there (the observer's step: the marker karchive writes for
    its own placeholders is what that tool never wrote)."""
    copy, original = entry.archive, entry.original
    if copy is None or original is None or not legacy_placeholder(
            entry.tags, original, copy.layout, legacy_size):
        return entry
    proven = replace(copy, placeholder_flavor_ids=copy.placeholder_flavor_ids
                     | {original.flavor_id})
    return replace(entry, archive=proven)


def recoverable(entry: ObservedEntry) -> bool:
    """No usable content in Kaltura (NO_CONTENT, or READY with no original or a dead one) but a
    copy the entry was archived to: the Princeton tool's failed replaces and restores. Recovery
    brings the copy back; it can lose nothing, as nothing is left in Kaltura to lose."""
    copy = entry.archive
    if copy is None or entry.replacement_status:
        return False
    if copy.layout == LEGACY and TAG_ARCHIVED not in entry.tags:
        return False  # a stray object under the entry's id, claimed by nothing
    original = entry.original
    if entry.status == NO_CONTENT:
        return original is None
    return entry.status == READY and (original is None or original.status in DEAD_FLAVOR)


def _notes(entry: ObservedEntry, placeholder_size: int | None) -> tuple[str, ...]:
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
    if copy.layout == LEGACY and copy.flavor_id is None:
        notes.append(NOTE_UNVERIFIED)
    original = entry.original
    if original is not None and original.size_bytes == placeholder_size \
            and not is_placeholder(entry):
        notes.append(NOTE_PLACEHOLDER_SIZE)
    return tuple(notes)


def classify(entry: ObservedEntry, placeholder_size: int | None = None) -> Observation:  # noqa: C901 — design.md's state ladder, one rung per branch; long: the ladder is the table
    """Name the state of ``entry``. ``placeholder_size`` (bytes, when known) only adds a note:
    content of the placeholder's size is not taken for it without proof (design.md inv. 6)."""
    notes = _notes(entry, placeholder_size)
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
    # Emptied (the old tool deleted the flavors, then its upload failed) with the copy it made:
    # still unhealthy, but the one unhealthy state karchive can bring back (``recover``).
    if recoverable(entry):
        return Observation(ObservedState.UNHEALTHY, EMPTIED, recoverable=True, notes=notes)
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
    placeholder = is_placeholder(entry)
    if not replaced:
        # The placeholder (proven) under archived_to_s3 alone: a replace killed before its tag.
        if tagged and placeholder:
            return Observation(ObservedState.PLACEHOLDER, PLACEHOLDER_OK,
                               repair=Repair(FIX_REPLACED_TAG, add=frozenset({TAG_REPLACED})),
                               notes=notes)
        # A proven copy of the current original with no tag: an archive killed before its tag.
        if not tagged and current:
            return Observation(ObservedState.ORIGINAL, NOT_ARCHIVED, archive_current=True,
                               repair=Repair(FIX_ADD_TAG, add=frozenset({TAG_ARCHIVED})),
                               notes=notes)
        # A copy nobody proved (the old tool's), or of an older version: archive (or verify) it.
        if not current:
            if copy.flavor_id is None:
                reason = UNVERIFIED_COPY
            else:
                reason = EDITED_AFTER_ARCHIVAL if tagged else STALE_COPY
            return Observation(ObservedState.ORIGINAL, reason, notes=notes)
        # Tagged, copy proven current: archived.
        return Observation(ObservedState.ARCHIVED, ARCHIVED_OK, archive_current=True, notes=notes)
    # From here: flavors_deleted and a copy. A missing archived_to_s3 is added back.
    add = frozenset() if tagged else frozenset({TAG_ARCHIVED})
    if placeholder:
        fix = Repair(FIX_ADD_TAG, add=add) if add else None
        return Observation(ObservedState.PLACEHOLDER, PLACEHOLDER_OK, repair=fix, notes=notes)
    # The archived video is back (a restore finished, the untag did not): drop flavors_deleted.
    # Only a tag changes; should the bytes differ after all, the entry is archived again next.
    if current or original.size_bytes == copy.size_bytes:
        repair = Repair(FIX_CONTENT_BACK, add=add, remove=frozenset({TAG_REPLACED}))
        return Observation(ObservedState.ARCHIVED, ARCHIVED_OK, archive_current=current,
                           repair=repair, notes=notes)
    # flavors_deleted on content that is neither the placeholder (proven) nor the copy: someone
    # uploaded something new, or nothing proves what it is. Reported, never restored over.
    return unhealthy(UNKNOWN_CONTENT)
