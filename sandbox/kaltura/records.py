"""Domain records of the emulator: what a partner's state is made of, and what the wire shows.

Each record is a mutable dataclass (the models change them in place under the backend's lock),
slotted: a 200,000-entry catalogue holds about a million of them, and a MediaEntry's 35 fields
exceed what CPython's key-sharing instance dicts hold (30), so without slots each entry costs
~1.8 KB instead of ~0.35 KB. Use ``dataclasses.fields``/``getattr``, not ``vars()``.
Field names are the wire names in snake_case; ``wire.py`` turns ``size_in_bytes`` into
``sizeInBytes`` and writes ``object_type`` first. Fields whose name starts with ``_`` and fields
listed in ``HIDDEN`` are internal and never sent; names listed in ``NULLS`` are fields of the
Kaltura type that the emulator never fills, sent as null. ``None`` is sent as an empty element
(XML) or dropped (JSON). Field lists follow the reference (kaltura-api.md, sections 5-9, 11.3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from sandbox.kaltura.content import Content


class EntryStatus:
    """KalturaEntryStatus (a string enum on the wire)."""

    ERROR_IMPORTING = -2
    ERROR_CONVERTING = -1
    IMPORT = 0
    PRECONVERT = 1
    READY = 2
    DELETED = 3
    PENDING = 4
    MODERATE = 5
    BLOCKED = 6
    NO_CONTENT = 7


class FlavorStatus:
    ERROR = -1
    QUEUED = 0
    CONVERTING = 1
    READY = 2
    DELETED = 3
    NOT_APPLICABLE = 4
    TEMP = 5
    WAIT_FOR_CONVERT = 6
    IMPORTING = 7
    VALIDATING = 8
    EXPORTING = 9


class ReplacementStatus:
    NONE = 0
    APPROVED_BUT_NOT_READY = 1
    READY_BUT_NOT_APPROVED = 2
    NOT_READY_AND_NOT_APPROVED = 3
    FAILED = 4


class UploadTokenStatus:
    PENDING = 0
    PARTIAL_UPLOAD = 1
    FULL_UPLOAD = 2
    CLOSED = 3
    TIMED_OUT = 4
    DELETED = 5


class UserStatus:
    """KalturaUserStatus (an int enum): deleted users are never listed nor found."""

    BLOCKED = 0
    ACTIVE = 1
    DELETED = 2


class MediaType:
    VIDEO = 1
    IMAGE = 2
    AUDIO = 5


def entry_copy(entry: MediaEntry, **changes: Any) -> MediaEntry:
    """A copy of the entry with ``changes``, slot by slot: ``dataclasses.replace`` runs the
    checked ``__setattr__`` 33 times, about four times the cost, for each of a page's 500."""
    copy = object.__new__(MediaEntry)
    for name in MediaEntry.__slots__:
        object.__setattr__(copy, name, changes[name] if name in changes else getattr(entry, name))
    return copy


# Changes to MediaEntry fields after construction, and entries indexed (state.py), counted: a
# cached search result (models/listing.py) is good only while this count stays as it was. One
# counter for every backend in the process: a change anywhere invalidates all caches, which is
# merely cautious. Construction does not count: the wire's copies (``entry_copy``) are made for
# every listed entry, and a new entry counts when a backend indexes it.
ENTRY_CHANGES = [0]


@dataclass(slots=True)
class MediaEntry:
    object_type: ClassVar[str] = "KalturaMediaEntry"
    HIDDEN: ClassVar[frozenset[str]] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        # Every write to a set field counts, the models' and a test's alike: none can slip past
        # a cache. A slot is unset only while __init__ fills it.
        if hasattr(self, name):
            ENTRY_CHANGES[0] += 1
        object.__setattr__(self, name, value)

    id: str
    partner_id: int
    name: str = ""
    description: str = ""
    user_id: str = ""
    creator_id: str = ""
    tags: str = ""
    categories: str = ""
    categories_ids: str = ""
    status: int = EntryStatus.READY
    moderation_status: int = 6  # KalturaEntryModerationStatus.AUTO_APPROVED
    type: int = 1  # KalturaEntryType.MEDIA_CLIP
    created_at: int = 0
    updated_at: int = 0
    last_played_at: int | None = None
    plays: int = 0
    views: int = 0
    duration: int = 0
    ms_duration: int = 0
    media_type: int = MediaType.VIDEO
    width: int = 0
    height: int = 0
    data_url: str = ""
    download_url: str = ""
    thumbnail_url: str = ""
    flavor_params_ids: str = ""
    conversion_profile_id: int = 0
    replacing_entry_id: str | None = None
    replaced_entry_id: str | None = None
    replacement_status: int = ReplacementStatus.NONE
    display_in_search: int = 1
    reference_id: str = ""
    root_entry_id: str = ""


@dataclass(slots=True)
class Asset:
    """The ``KalturaAsset`` base every asset kind shares: ids, bytes (never sent), bookkeeping.

    ``size`` is in the unit Kaltura fills it in, which is not the documented one ("in KBytes")
    for every kind: flavors carry kilobytes (from media info), thumbnails, captions and
    attachments carry bytes (their services set it from the file size). ``sizeInBytes`` is
    bytes for every kind (kFileSyncUtils::setSizeInBytesOnAsset). Reference section 11.3.
    """

    object_type: ClassVar[str] = "KalturaAsset"
    HIDDEN: ClassVar[frozenset[str]] = frozenset({"content"})
    # Fields of the Kaltura type that the emulator never fills: sent as empty elements.
    NULLS: ClassVar[tuple[str, ...]] = (
        "partner_data", "partner_description", "actual_source_asset_params_ids",
    )

    id: str
    entry_id: str
    partner_id: int
    content: Content | None = None
    version: int = 1  # KalturaAsset.version is an int
    size: int = 0  # kilobytes for flavors, bytes for the other kinds (see above)
    tags: str = ""
    file_ext: str = ""
    created_at: int = 0
    updated_at: int = 0
    deleted_at: int | None = None
    description: str = ""
    size_in_bytes: int = 0


@dataclass(slots=True)
class FlavorAsset(Asset):
    object_type: ClassVar[str] = "KalturaFlavorAsset"

    file_ext: str = "mp4"
    flavor_params_id: int = 0
    width: int = 0
    height: int = 0
    bitrate: int = 0
    frame_rate: float = 0.0
    is_original: bool = False
    is_web: bool = True
    container_format: str = "mp4"
    video_codec_id: str = ""
    status: int = FlavorStatus.READY


@dataclass(slots=True)
class ThumbAsset(Asset):
    object_type: ClassVar[str] = "KalturaThumbAsset"

    file_ext: str = "jpg"
    thumb_params_id: int = 0
    width: int = 0
    height: int = 0
    status: int = 2  # KalturaThumbAssetStatus.READY


@dataclass(slots=True)
class CaptionAsset(Asset):
    object_type: ClassVar[str] = "KalturaCaptionAsset"
    NULLS: ClassVar[tuple[str, ...]] = (
        *Asset.NULLS, "caption_params_id", "source", "parent_id", "accuracy",
        "associated_transcript_ids", "usage",
    )

    file_ext: str = "srt"
    language: str = "English"
    language_code: str = "en"
    label: str = "English"
    format: str = "1"  # KalturaCaptionType: 1 SRT, 2 DFXP, 3 WEBVTT
    is_default: bool = False
    display_on_player: bool = True
    status: int = 2


@dataclass(slots=True)
class AttachmentAsset(Asset):
    object_type: ClassVar[str] = "KalturaAttachmentAsset"

    file_ext: str = "pdf"
    filename: str = ""
    title: str = ""
    format: str = "3"  # KalturaAttachmentType: 1 TEXT, 2 MEDIA, 3 DOCUMENT
    status: int = 2


@dataclass(frozen=True, slots=True)
class FlavorParams:
    """A flavor params (transcoding profile) of partner 0, which every partner sees."""

    object_type: ClassVar[str] = "KalturaFlavorParams"
    HIDDEN: ClassVar[frozenset[str]] = frozenset()

    id: int
    partner_id: int = 0
    name: str = ""
    system_name: str = ""
    description: str = ""
    created_at: int = 0
    is_system_default: bool = True
    tags: str = ""
    format: str = "mp4"
    video_codec: str = "h264"
    video_bitrate: int = 0
    audio_codec: str = "aac"
    audio_bitrate: int = 0
    width: int = 0
    height: int = 0
    frame_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class FlavorAssetWithParams:
    """An item of flavorAsset.getFlavorAssetsWithParams: an asset, its params, or both."""

    object_type: ClassVar[str] = "KalturaFlavorAssetWithParams"
    HIDDEN: ClassVar[frozenset[str]] = frozenset()

    flavor_asset: FlavorAsset | None
    flavor_params: FlavorParams | None
    entry_id: str


@dataclass(slots=True)
class UploadToken:
    object_type: ClassVar[str] = "KalturaUploadToken"
    HIDDEN: ClassVar[frozenset[str]] = frozenset({"data"})

    id: str
    partner_id: int
    user_id: str = ""
    status: int = UploadTokenStatus.PENDING
    file_name: str = ""
    file_size: float | None = None
    uploaded_file_size: float = 0
    created_at: int = 0
    updated_at: int = 0
    upload_url: str = ""
    data: bytearray = field(default_factory=bytearray)


@dataclass(slots=True)
class User:
    """A partner's user (a kuser): an entry's ``userId`` and ``creatorId`` name one.

    ``fullName`` is what the server returns for it: ``trim(firstName + " " + lastName)``
    (kaltura/server alpha/lib/model/kuser.php ``getFullName``); ``refresh_full_name`` keeps it.
    Reference section 11.5.
    """

    object_type: ClassVar[str] = "KalturaUser"
    HIDDEN: ClassVar[frozenset[str]] = frozenset()
    NULLS: ClassVar[tuple[str, ...]] = (
        "country", "state", "city", "zip", "thumbnail_url", "description", "tags", "admin_tags",
        "partner_data", "indexed_partner_data_int", "indexed_partner_data_string", "language",
        "allowed_partner_ids", "allowed_partner_packages", "user_mode", "capabilities",
        "date_of_birth", "gender", "registration_info", "attendance_info", "ks_privileges",
        "encrypted_seed",
    )

    id: str
    partner_id: int
    screen_name: str = ""
    full_name: str = ""
    email: str = ""
    status: int = UserStatus.ACTIVE
    created_at: int = 0
    updated_at: int = 0
    storage_size: int = 0
    last_login_time: int | None = None
    status_updated_at: int | None = None
    deleted_at: int | None = None
    type: int = 0  # KalturaUserType: 0 USER, 1 GROUP
    is_admin: bool = False
    is_guest: bool = False
    role_ids: str = ""
    role_names: str = ""
    is_account_owner: bool = False
    first_name: str = ""
    last_name: str = ""
    login_enabled: bool = False
    title: str = ""
    company: str = ""
    is_sso_excluded: bool = False
    external_id: str = ""

    def refresh_full_name(self) -> None:
        self.full_name = f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True, slots=True)
class ESearchEntryResult:
    """One hit of eSearch: the entry as media.get shows it; no highlights, no inner items."""

    object_type: ClassVar[str] = "KalturaESearchEntryResult"
    HIDDEN: ClassVar[frozenset[str]] = frozenset()

    object: MediaEntry
    highlight: tuple[Any, ...] = ()
    items_data: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class ESearchEntryResponse:
    """``KalturaESearchEntryResponse``: totalCount, then the page's results; no aggregations."""

    object_type: ClassVar[str] = "KalturaESearchEntryResponse"
    HIDDEN: ClassVar[frozenset[str]] = frozenset()

    total_count: int
    objects: list[ESearchEntryResult]
    aggregations: None = None


@dataclass(slots=True)
class ListResponse:
    """A ``Kaltura…ListResponse``: ``objects`` then the true (uncapped) ``totalCount``."""

    object_type: str
    objects: list[Any]
    total_count: int


@dataclass(frozen=True)
class CallContext:
    """Who is calling and where the server is: passed to every action handler."""

    partner_id: int
    base_url: str
    user_id: str = ""
    session_type: int = 2  # 0 USER, 2 ADMIN
    privileges: str = ""
    ks: str = ""


@dataclass
class Partner:
    """The one partner the emulator serves, and its knobs.

    ``conversion_delay`` is how long (seconds, on the backend clock) new content takes to become
    READY flavors; ``replacement_requires_approval`` puts replacements in status 3 until
    media.approveReplace, as partners with that setting do.
    """

    id: int = 100
    name: str = "karchive sandbox"
    admin_secret: str = "sandbox-admin-secret"
    user_secret: str = "sandbox-user-secret"
    replacement_requires_approval: bool = False
    conversion_delay: float = 2.0
    derived_flavor_params: tuple[int, ...] = (301, 302, 303)
    # Per-connection cap on download bandwidth (bytes/s) of the flavor download endpoint; None
    # serves as fast as the machine allows. A CDN caps single streams the same way.
    download_rate_limit: float | None = None
    # The longest session.start may grant; longer requests are capped to it (Kaltura's default).
    max_session_expiry: int = 86400
