"""The catalogue's vocabulary and its truth: constants, legacy kinds and the summary records.

Shared by the generator (``sandbox.catalogue.draw``) and by whoever checks observations against
what was generated (tests, benchmarks): which entries are in which Princeton-era state, and what
the bucket should hold for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sandbox.kaltura.content import SeededContent
from sandbox.kaltura.records import (
    AttachmentAsset,
    CaptionAsset,
    FlavorAsset,
    MediaEntry,
    ThumbAsset,
)

YEAR = 365 * 24 * 3600
GB = 1000**3
MIB = 1 << 20
ARCHIVED_TAG = "archived_to_s3"
PLACEHOLDER_TAG = "flavors_deleted"
EXEMPT_TAG = "archive_exempt"
# The Princeton tool swapped every archived video for one small placeholder video; all of its
# placeholders share these bytes (a 10 s low-resolution clip, 300,000 bytes).
PLACEHOLDER_CONTENT = SeededContent(seed=0x91ACE, size=300_000)
PLACEHOLDER_MS_DURATION = 10_000
# Legacy objects are uploaded to moto at every sandbox start; moto keeps them in memory and takes
# them at ~40 MB/s. So they are small videos, and all of them together stay within a budget: a
# 2,000-entry sandbox (~44 objects) gets 64 KiB-1 MiB each, a 200,000-entry one (~4,400) ~15 KB.
LEGACY_MAX_SIZE = 1 * MIB
LEGACY_BYTES_BUDGET = 64 * MIB
LEGACY_FLOOR = 8 * 1024
DERIVED_FLAVOR_PARAMS = (301, 302, 303)  # Partner.derived_flavor_params' default


class LegacyKind(StrEnum):
    """How a legacy or deliberately broken entry looks, in the Princeton tool's terms."""

    ARCHIVED = "archived"  # archived_to_s3, object = the original flavor's bytes
    PLACEHOLDER = "placeholder"  # both tags; Kaltura holds the placeholder, the object the video
    TAG_WITHOUT_OBJECT = "tag_without_object"  # archived_to_s3, but nothing in the bucket
    DELETED_WITHOUT_ARCHIVED = "deleted_without_archived"  # flavors_deleted alone
    OBJECT_WITHOUT_TAG = "object_without_tag"  # an object in the bucket, no tag on the entry
    SIZE_MISMATCH = "size_mismatch"  # archived_to_s3, but the video was replaced since
    # The Princeton tool deletes every flavor before it uploads (reference/prior-tools.md): when
    # the upload then fails, the entry is left NO_CONTENT with its copy in the bucket.
    EMPTIED_BY_REPLACE = "emptied_by_replace"  # archived_to_s3; placeholder upload failed
    EMPTIED_BY_RESTORE = "emptied_by_restore"  # both tags; the restore's upload failed


# Share of the catalogue per kind (the first two ≈ 2 % together; the broken ones a handful).


@dataclass(frozen=True, slots=True)
class LegacyObject:
    """An object the Princeton tool left in the bucket: key = the bare entry id."""

    key: str
    content: SeededContent
    storage_class: str  # GLACIER (after the bucket's lifecycle rule ran) or STANDARD


@dataclass(frozen=True, slots=True)
class Generated:
    """One entry and its assets, as handed to ``KalturaBackend.insert``."""

    entry: MediaEntry
    flavors: tuple[FlavorAsset, ...]
    thumbs: tuple[ThumbAsset, ...]
    captions: tuple[CaptionAsset, ...]
    attachments: tuple[AttachmentAsset, ...]
    legacy: LegacyKind | None = None
    legacy_object: LegacyObject | None = None
    custom_thumb: bool = False


@dataclass(frozen=True, slots=True)
class CatalogueSummary:
    """Counts per kind, and the generated truth later tests check observations against."""

    entries: int
    seed: int
    now: float
    by_status: dict[int, int]
    by_media_type: dict[int, int]
    never_played: int
    over_10gb: int
    exempt: int
    with_captions: int
    with_attachments: int
    custom_thumbs: int
    source_bytes: int  # sum of the source flavors held in Kaltura (placeholders count as such)
    legacy: dict[LegacyKind, tuple[str, ...]] = field(default_factory=dict)
    objects: tuple[LegacyObject, ...] = ()
    # Entries whose default thumbnail was uploaded by the owner (a replace must keep it), and
    # entries whose source is over 10 GB (multipart part sizes, the old tool's size warning).
    custom_thumb_ids: tuple[str, ...] = ()
    over_10gb_ids: tuple[str, ...] = ()
    # The users behind the owner ids: how many, and which have no address or are blocked.
    users: int = 0
    users_without_email: tuple[str, ...] = ()
    blocked_users: tuple[str, ...] = ()

    def legacy_ids(self, kind: LegacyKind) -> tuple[str, ...]:
        return self.legacy.get(kind, ())

    @property
    def legacy_count(self) -> int:
        return sum(len(ids) for ids in self.legacy.values())
