"""Observed facts: what the adapters saw of one entry, in Kaltura and in the archive.

This is the contract between the edges and the pure core. ``controller`` adapters build these
values from Kaltura (entries, flavors, tags) and S3 (archive objects, restore status);
``policies`` classifies them into an observed state and decides the desired one; the planner
diffs the two. Every value is frozen: an observation is a fact about one instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# Tag names of the Princeton kaltura_archiver, kept so a partner that used it is adopted as is.
TAG_ARCHIVED = "archived_to_s3"
TAG_REPLACED = "flavors_deleted"


class RestoreStatus(StrEnum):
    """Where an archive object stands for reading."""

    READABLE = "readable"  # a storage class that reads at once (STANDARD, GLACIER_IR, ...)
    FROZEN = "frozen"  # GLACIER / DEEP_ARCHIVE with no restore requested
    THAWING = "thawing"  # a restore is in progress
    THAWED = "thawed"  # a restored copy is readable until its expiry


# Storage classes whose objects must be restored (thawed) before a GET (reference/s3-glacier.md).
COLD_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


def restore_status(storage_class: str, in_progress: bool, restored: bool) -> RestoreStatus:
    """What a storage class and its restore state (from a listing's ``RestoreStatus`` or a
    HEAD's ``x-amz-restore``) mean for reading: one definition for every reader."""
    if storage_class not in COLD_CLASSES:
        return RestoreStatus.READABLE
    if in_progress:
        return RestoreStatus.THAWING
    if restored:
        return RestoreStatus.THAWED
    return RestoreStatus.FROZEN


class OwnerStatus(StrEnum):
    """The entry owner's standing in the directory (LDAP). ``unknown`` never matches a rule."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class FlavorFacts:
    """One flavor asset of an entry (sizes in bytes; Kaltura reports KB and, newer, bytes)."""

    flavor_id: str
    flavor_params_id: int
    is_original: bool
    status: int  # KalturaFlavorAssetStatus: 2 READY
    size_bytes: int
    file_ext: str
    updated_at: int


@dataclass(frozen=True, slots=True)
class ArchiveFacts:
    """The archive copy of an entry's original flavor, as the bucket listing shows it.

    ``flavor_id`` and ``sha256`` come from the key (entry-folder layout) or from object metadata;
    for a legacy (bare entry id) object ``flavor_id`` is the flavor karchive proved it holds (a
    ``verified`` marker for its current ETag), else ``None``: a copy nobody proved.
    ``placeholder_flavor_ids``: the flavors karchive swapped in as the placeholder (markers).
    """

    key: str
    size_bytes: int
    storage_class: str
    restore: RestoreStatus
    layout: str  # "entry-folder" or "legacy"
    etag: str = ""
    flavor_id: str | None = None
    sha256: str | None = None
    restore_expiry: str | None = None
    placeholder_flavor_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class NoticeMark:
    """One accepted notice about one entry, as its marker's name in the archive records it
    (``policies.layout``): when the SMTP server accepted it, the date it announced, and the
    digest of what it announced (``policies.notices``)."""

    entry_id: str
    sent_at: int
    due_at: int
    digest: str


@dataclass(frozen=True, slots=True)
class ObservedEntry:
    """Everything karchive knows of one entry at one instant. Times are unix seconds (UTC)."""

    entry_id: str
    name: str
    user_id: str
    creator_id: str
    status: int  # KalturaEntryStatus: 2 READY
    media_type: int  # 1 video, 2 image, 5 audio
    created_at: int
    updated_at: int
    last_played_at: int | None  # None: never played
    plays: int
    duration: int  # seconds
    tags: frozenset[str] = frozenset()  # as Kaltura normalises them: lower case, trimmed
    category_ids: frozenset[int] = frozenset()
    categories: tuple[str, ...] = ()  # full names ("Courses>PHY101")
    flavors: tuple[FlavorFacts, ...] = ()
    replacement_status: int = 0  # 0 NONE; 1/2/3 a replacement in progress; 4 FAILED
    replacing_entry_id: str | None = None
    archive: ArchiveFacts | None = None
    owner_status: OwnerStatus = OwnerStatus.UNKNOWN
    reference_id: str = ""
    notices: tuple[NoticeMark, ...] = ()  # its owner's accepted notices (the archive's markers)
    extra: tuple[tuple[str, str], ...] = field(default=())  # free facts for reports

    @property
    def original(self) -> FlavorFacts | None:
        """The source flavor (``isOriginal``), if the entry has one."""
        for flavor in self.flavors:
            if flavor.is_original:
                return flavor
        return None

    @property
    def stored_bytes(self) -> int:
        """Bytes this entry holds in Kaltura storage (all flavors)."""
        return sum(f.size_bytes for f in self.flavors)
