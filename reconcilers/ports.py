"""The ports: what reconcilers need from the outside world, as Protocols and plain values.

Reconcilers sit between the controller and the pure core and may import only ``policies``; the
controller's adapters (``controller/adapters/kaltura/write.py``, ``controller/adapters/storage/``
``writer.py`` and ``local.py``, ``controller/adapters/kaltura/download.py``,
``controller/runtime/journal.py``, ``controller/runtime/metrics.py``) satisfy these Protocols
structurally; ``controller/compose.py`` hands them over in a ``Context``. Tests of the
reconcilers run them against the real adapters over HTTP; the values here are what crosses the
seam.

Every method raises the error tree of ``policies.errors`` and nothing else: ``NotFound`` for an
absent object, ``TransientError`` for a failure worth retrying, ``PermanentError`` otherwise.

Beside each port, what its methods cost outside: the Kaltura actions (``service.action``, lower
case) and the IAM actions of S3 they call, in small named sets; a reconciler's declaration
(``reconcilers.base.Needs``) is made of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from policies.observed import FlavorFacts, RestoreStatus


class AssetKind(StrEnum):
    """The side assets an archive keeps beside the original (names match policies.layout)."""

    THUMB = "thumbs"
    CAPTION = "captions"
    ATTACHMENT = "attachments"


@dataclass(frozen=True, slots=True)
class AssetRef:
    """A thumbnail, caption or attachment of an entry, with what the manifest records of it."""

    kind: AssetKind
    asset_id: str
    ext: str
    size_bytes: int = 0
    is_default: bool = False  # thumbnails: the entry's default thumbnail
    label: str = ""  # caption language/label, attachment title or filename
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class EntryDetails:
    """One entry as Kaltura reports it now: what the manifest and the preconditions read."""

    entry_id: str
    partner_id: int
    name: str
    description: str
    user_id: str
    creator_id: str
    tags: frozenset[str]
    categories: str
    category_ids: str
    status: int
    created_at: int
    updated_at: int
    last_played_at: int | None
    plays: int
    duration: int
    media_type: int
    reference_id: str
    # 0 NONE, 1 APPROVED_BUT_NOT_READY, 2 READY_BUT_NOT_APPROVED, 3 NOT_READY..., 4 FAILED
    replacement_status: int
    replacing_entry_id: str | None
    flavors: tuple[FlavorFacts, ...] = ()

    @property
    def original(self) -> FlavorFacts | None:
        for flavor in self.flavors:
            if flavor.is_original:
                return flavor
        return None

    @property
    def replacing(self) -> bool:
        """A replacement is in flight (its temp entry exists and has not been swapped in)."""
        return bool(self.replacing_entry_id) or self.replacement_status in (1, 2, 3)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One archive object as HEAD shows it."""

    key: str
    size_bytes: int
    etag: str
    storage_class: str
    restore: RestoreStatus
    metadata: Mapping[str, str] = field(default_factory=dict)
    last_modified: str = ""

    @property
    def readable(self) -> bool:
        return self.restore in (RestoreStatus.READABLE, RestoreStatus.THAWED)


@dataclass(frozen=True, slots=True)
class UploadResult:
    """A completed write-once upload: its sha256 (of the bytes streamed, in order) and etag."""

    key: str
    size_bytes: int
    sha256: str
    etag: str
    parts: int
    written_by_us: bool  # False: another runner completed the same key first (412), and it matched


class Readable(Protocol):
    """A byte source read front to back (an HTTP range reader, an S3 body)."""

    def read(self, size: int = -1) -> bytes: ...

    def close(self) -> None: ...


# The Kaltura actions behind KalturaPort's methods (adapters/kaltura/write.py).
ENTRY = frozenset({"media.get", "flavorasset.list"})  # entry()
FLAVOR_URL = frozenset({"flavorasset.geturl"})  # flavor_url(): a download, or a hash of one
ASSETS = frozenset({  # assets() and asset_url()
    "thumbasset.list", "caption_captionasset.list", "attachment_attachmentasset.list",
    "thumbasset.geturl", "caption_captionasset.geturl", "attachment_attachmentasset.geturl"})
TAGS = frozenset({"media.get", "media.update"})  # add_tags(), remove_tags()
UPLOAD = frozenset({"uploadtoken.add", "uploadtoken.upload"})  # any *_from_upload, bytes
UPDATE_CONTENT = frozenset({"media.updatecontent"}) | ENTRY | UPLOAD  # update_content_from_*
APPROVE = frozenset({"media.approvereplace"})  # approve_replacement()
THUMB_FROM_BYTES = frozenset({  # set_default_thumb_from_bytes()
    "thumbasset.add", "thumbasset.setcontent", "thumbasset.setasdefault"}) | UPLOAD
ADD_CONTENT = frozenset({"media.addcontent"}) | UPLOAD  # add_content_from_*
ADD_ENTRY = frozenset({"media.add"})  # add_entry()
ADD_ASSET = frozenset({  # add_asset()
    "thumbasset.add", "thumbasset.setcontent", "caption_captionasset.add",
    "caption_captionasset.setcontent", "attachment_attachmentasset.add",
    "attachment_attachmentasset.setcontent"}) | UPLOAD
DELETE_ENTRY = frozenset({"baseentry.delete"})  # delete_entry()

# The IAM actions behind ArchivePort's methods on S3 (adapters/storage/writer.py).
S3_READ = frozenset({"s3:GetObject"})  # head(), get_bytes(), open_read(), presign_get()
S3_LIST = frozenset({"s3:ListBucket"})  # list_keys()
S3_WRITE = frozenset({"s3:PutObject"})  # put_bytes()
S3_UPLOAD = frozenset({  # upload_stream() (multipart, its checksum tag) and abort_stale_uploads()
    "s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload",
    "s3:ListBucketMultipartUploads", "s3:GetObject"})
S3_CHECKSUM = frozenset({"s3:GetObject", "s3:GetObjectTagging"})  # get_sha256()
S3_COPY = frozenset({"s3:GetObject", "s3:PutObject"})  # copy(): HEAD + CopyObject
S3_THAW = frozenset({"s3:RestoreObject"})  # request_restore()
S3_DELETE = frozenset({"s3:DeleteObject"})  # delete()


@runtime_checkable
class KalturaPort(Protocol):
    """Kaltura reads a reconciler needs now (fresh, never the plan's snapshot) and its mutations."""

    def entry(self, entry_id: str) -> EntryDetails: ...

    def flavor_url(self, flavor_id: str) -> str: ...

    def assets(self, entry_id: str) -> tuple[AssetRef, ...]: ...

    def asset_url(self, asset: AssetRef) -> str: ...

    def add_tags(self, entry_id: str, tags: frozenset[str]) -> frozenset[str]: ...

    def remove_tags(self, entry_id: str, tags: frozenset[str]) -> frozenset[str]: ...

    def update_content_from_url(self, entry_id: str, url: str) -> EntryDetails: ...

    def update_content_from_upload(
        self, entry_id: str, source: Readable, size: int, file_name: str
    ) -> EntryDetails: ...

    def approve_replacement(self, entry_id: str) -> None: ...

    def set_default_thumb_from_url(self, entry_id: str, url: str) -> str: ...

    def set_default_thumb_from_bytes(self, entry_id: str, data: bytes, file_name: str) -> str: ...

    def delete_entry(self, entry_id: str) -> None: ...

    # -- recreating an entry from its archive --------------------------------------------------

    def add_entry(self, fields: Mapping[str, str]) -> str: ...

    def add_content_from_url(self, entry_id: str, url: str) -> None: ...

    def add_content_from_upload(
        self, entry_id: str, source: Readable, size: int, file_name: str
    ) -> None: ...

    def add_asset(self, entry_id: str, kind: AssetKind, data: bytes, file_name: str,
                  fields: Mapping[str, str]) -> str: ...


@runtime_checkable
class ArchivePort(Protocol):
    """The bucket: write-once streaming uploads, small objects, thaw and presigned reads."""

    bucket: str

    def head(self, key: str) -> ObjectInfo | None: ...

    def upload_stream(
        self,
        key: str,
        source: Readable,
        size: int,
        *,
        metadata: Mapping[str, str],
        storage_class: str,
        part_size: int | None = None,
        before_complete: Callable[[str], None] | None = None,
    ) -> UploadResult: ...

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> str: ...

    def get_bytes(self, key: str) -> bytes: ...

    def set_sha256(self, key: str, sha256: str) -> None: ...

    def get_sha256(self, key: str) -> str | None: ...

    def open_read(self, key: str) -> Readable: ...

    def list_keys(self, prefix: str) -> Iterator[str]: ...

    def abort_stale_uploads(self, key: str, *, started_before: float | None = None) -> int: ...

    def copy(self, source_key: str, key: str, *, metadata: Mapping[str, str],
             storage_class: str) -> ObjectInfo: ...

    def delete(self, key: str) -> None: ...

    def request_restore(self, key: str, *, days: int, tier: str) -> str: ...

    def presign_get(self, key: str, expires: int) -> str: ...


class SourcePort(Protocol):
    """Opens a download URL as a resumable stream of exactly ``size`` bytes."""

    def open(self, url: str, size: int) -> Readable: ...

    def fetch(self, url: str) -> bytes:
        """A small file (thumbnail, caption, attachment) whole; a cut body raises."""
        ...


class JournalPort(Protocol):
    """The step journal: intent before a side effect, its result after (design.md invariant 4)."""

    def record(
        self,
        entry_id: str,
        action: str,
        step: str,
        *,
        result: str,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None: ...


class MetricsPort(Protocol):
    """The slice of controller.runtime.metrics.Metrics that reconcilers and the executor call."""

    def transition(self, action: str, result: str) -> None: ...

    def bytes_archived(self, n: int) -> None: ...

    def bytes_restored(self, n: int) -> None: ...

    def error(self, reason: str) -> None: ...


class NullMetrics:
    """Metrics that go nowhere: the default outside the daemon (and until one is passed)."""

    def transition(self, action: str, result: str) -> None:
        pass

    def bytes_archived(self, n: int) -> None:
        pass

    def bytes_restored(self, n: int) -> None:
        pass

    def error(self, reason: str) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        # The daemon's Metrics has more methods (copy_duration, thaws...): accept them all.
        return lambda *args, **kwargs: None
