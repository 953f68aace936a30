"""New content and the asynchronous replacement flow (reference section 8).

Content arrives as an upload token or a URL the emulator fetches itself in a daemon thread (so a
presigned S3 URL works and the bytes never pass through the caller). It becomes a source flavor
that converts for ``partner.conversion_delay`` seconds on the backend clock; then the derived
flavors appear, a thumbnail is generated and the entry is READY.

Replacing a READY entry goes through a hidden temp entry: the original carries
``replacingEntryId`` and ``replacementStatus`` 1 (or 3 when the partner requires approval); when the
temp entry is READY the swap happens (status 1) or waits for approveReplace (3 -> 2). The swap keeps
the entry id, deletes the old flavors, moves the new ones over and makes the new generated
thumbnail the default, as Kaltura does; the old thumbnails stay, no longer default.
"""

from __future__ import annotations

import posixpath
import threading
import urllib.parse
import urllib.request
import zlib
from collections.abc import Mapping
from typing import Any

from sandbox.kaltura.content import BytesContent, Content, SeededContent
from sandbox.kaltura.models import errors
from sandbox.kaltura.models.spool import read_body
from sandbox.kaltura.models.state import (
    DEFAULT_THUMB_TAG,
    TOKEN_RESOURCE,
    URL_RESOURCE,
    BackendState,
    Job,
    download_path,
    has_tag,
)
from sandbox.kaltura.records import (
    EntryStatus,
    FlavorAsset,
    FlavorStatus,
    MediaEntry,
    ReplacementStatus,
)

URL_FETCH_TIMEOUT = 60.0
_SOURCE_BITRATE = 2_000_000  # bits/s assumed for uploaded content, to give it a duration
_DERIVED_SHAPES = ((1280, 720, 0.5), (854, 480, 0.25), (640, 360, 0.125), (426, 240, 0.06))


def file_ext(name: str, default: str = "mp4") -> str:
    ext = posixpath.splitext(urllib.parse.urlsplit(name).path)[1].lstrip(".").lower()
    return ext if ext and len(ext) <= 5 else default


class ReplacementMixin(BackendState):
    """updateContent, addContent, approveReplace, cancelReplace and the conversion jobs."""

    # -- resources ----------------------------------------------------------------------------

    def _attach(self, entry: MediaEntry, resource: Mapping[str, Any]) -> None:
        """Start ingesting a resource into ``entry`` (a NO_CONTENT entry or a temp entry)."""
        if self._check_resource(resource) == TOKEN_RESOURCE:
            ext = file_ext(self.usable_token(resource).file_name)
            self._ingest(entry, BytesContent(self.take_token(resource)), ext)
        else:
            entry.status = EntryStatus.IMPORT
            self._start_import(entry.id, str(resource["url"]))

    def _check_resource(self, resource: Mapping[str, Any]) -> str:
        """Validate before any state changes, so a refused call leaves nothing behind."""
        kind = str(resource.get("objectType", ""))
        if kind == TOKEN_RESOURCE:
            self.usable_token(resource)
        elif kind == URL_RESOURCE:
            if not resource.get("url"):
                raise errors.missing_parameter("url")
        else:
            raise errors.resource_not_supported(kind or "null")
        return kind

    def _start_import(self, entry_id: str, url: str) -> None:
        def fetch() -> None:
            content: Content | None
            try:
                with urllib.request.urlopen(url, timeout=URL_FETCH_TIMEOUT) as response:
                    content = read_body(response)
            except Exception:  # any failure to fetch is an import error for the entry
                content = None
            with self.lock:
                self._import_finished(entry_id, content, file_ext(url))

        thread = threading.Thread(target=fetch, name=f"import-{entry_id}", daemon=True)
        self._imports = [t for t in self._imports if t.is_alive()] + [thread]
        thread.start()

    def join_imports(self, timeout: float = 30.0) -> None:
        """Wait for URL imports in flight (tests use it instead of sleeping)."""
        for thread in list(self._imports):
            thread.join(timeout)

    def _import_finished(self, entry_id: str, content: Content | None, ext: str) -> None:
        entry = self.entries.get(entry_id)
        if entry is None or entry.status == EntryStatus.DELETED:
            return  # cancelled or deleted while the import ran
        if content is None:
            self._fail(entry, EntryStatus.ERROR_IMPORTING)
            return
        self._ingest(entry, content, ext)

    # -- conversion ---------------------------------------------------------------------------

    def _ingest(self, entry: MediaEntry, content: Content, ext: str) -> None:
        now = self.now()
        source = FlavorAsset(
            id=self.new_id(), entry_id=entry.id, partner_id=entry.partner_id, content=content,
            size=-(-content.size // 1024), size_in_bytes=content.size, tags="source",
            file_ext=ext, created_at=now, updated_at=now, flavor_params_id=0, is_original=True,
            is_web=False, container_format=ext, status=FlavorStatus.CONVERTING,
        )
        self.add_asset(source)
        entry.status = EntryStatus.PRECONVERT
        entry.updated_at = now
        self.schedule(self.partner.conversion_delay, "entry", entry.id, source.id)
        if self.partner.conversion_delay <= 0:
            self.tick()

    def _run_job(self, job: Job) -> None:
        entry = self.entries.get(job.entry_id)
        flavor = self.flavors.get(job.flavor_id)
        if entry is None or flavor is None or flavor.status == FlavorStatus.DELETED:
            return
        if job.kind == "flavor":
            flavor.status = FlavorStatus.READY
            flavor.updated_at = self.now()
            self._refresh_flavor_ids(entry)
            return
        if entry.status == EntryStatus.DELETED:
            return
        if flavor.size_in_bytes == 0:  # nothing to transcode: the conversion fails
            flavor.status = FlavorStatus.ERROR
            self._fail(entry, EntryStatus.ERROR_CONVERTING)
            return
        self._finish_conversion(entry, flavor)

    def _finish_conversion(self, entry: MediaEntry, source: FlavorAsset) -> None:
        now = self.now()
        source.status = FlavorStatus.READY
        source.updated_at = now
        source.width, source.height, source.bitrate = 1920, 1080, _SOURCE_BITRATE // 1000
        source.frame_rate = 30.0
        for params_id, (width, height, share) in zip(
            self.partner.derived_flavor_params, _DERIVED_SHAPES, strict=False
        ):
            self.add_asset(self.derived_flavor(entry, source, params_id, width, height, share))
        ms = max(1000, source.size_in_bytes * 8 * 1000 // _SOURCE_BITRATE)
        entry.ms_duration, entry.duration = ms, round(ms / 1000)
        entry.width, entry.height = source.width, source.height
        path = download_path(entry.partner_id, "flavor", source.id, source.file_ext)
        entry.data_url = entry.download_url = path
        entry.status = EntryStatus.READY
        entry.updated_at = now
        self._refresh_flavor_ids(entry)
        self.generate_thumb(entry, offset=min(3.0, ms / 2000), make_default=True)
        if entry.replaced_entry_id:
            self._temp_ready(entry)

    def derived_flavor(self, entry: MediaEntry, source: FlavorAsset, params_id: int, width: int,
                       height: int, share: float) -> FlavorAsset:
        fid = self.new_id()
        size = max(1, int(source.size_in_bytes * share))
        now = self.now()
        return FlavorAsset(
            id=fid, entry_id=entry.id, partner_id=entry.partner_id,
            content=SeededContent(zlib.crc32(fid.encode()), size), size=-(-size // 1024),
            size_in_bytes=size, tags="mobile,web,mbr", file_ext="mp4", created_at=now,
            updated_at=now, flavor_params_id=params_id, width=width, height=height,
            bitrate=int(_SOURCE_BITRATE * share) // 1000, frame_rate=30.0, is_original=False,
            is_web=True, status=FlavorStatus.READY,
        )

    def _refresh_flavor_ids(self, entry: MediaEntry) -> None:
        """After a flavor turned READY or DELETED, as ``entry::syncFlavorParamsIds`` does: the
        entry's flavorParamsIds are its READY flavors', and with none left the entry is
        NO_CONTENT (7) in the same request — so ``media.addContent`` is accepted then
        (kaltura/server alpha/lib/model/entry.php ``syncFlavorParamsIds``, called from
        flavorAsset.php ``postUpdate`` → ``syncEntryFlavorParamsIds``; reference §11.4)."""
        if entry.status == EntryStatus.DELETED:
            return
        ids = sorted({f.flavor_params_id for f in self.live_assets(self.flavors_by_entry, entry.id)
                      if f.status == FlavorStatus.READY})
        entry.flavor_params_ids = ",".join(str(i) for i in ids)
        if not ids:
            entry.status = EntryStatus.NO_CONTENT

    def _fail(self, entry: MediaEntry, status: int) -> None:
        entry.status = status
        entry.updated_at = self.now()
        original = self.entries.get(entry.replaced_entry_id or "")
        if original is not None and original.replacing_entry_id == entry.id:
            original.replacement_status = ReplacementStatus.FAILED
            original.updated_at = self.now()

    # -- actions ------------------------------------------------------------------------------

    def add_content(self, entry_id: str, resource: Mapping[str, Any] | None) -> MediaEntry:
        """media.addContent: accepted only while the entry is NO_CONTENT, whatever made it so
        (media.add, or its last READY flavor deleted); the resource is optional and without one
        the entry comes back unchanged (kaltura/server api_v3/services/MediaService.php
        ``addContentAction``; PR #8165; reference sections 8 and 11.4)."""
        with self.lock:
            entry = self.live_entry(entry_id)
            if entry.status != EntryStatus.NO_CONTENT:
                raise errors.entry_already_with_content()
            if resource:
                self._check_resource(resource)
                self._attach(entry, resource)
            return entry

    def update_content(self, entry_id: str, resource: Mapping[str, Any]) -> MediaEntry:
        """media.updateContent: a NO_CONTENT entry takes the content directly; an entry in any
        other status (READY, converting, failed, ...) gets it through a replacement
        (MediaService::replaceResource, KalturaEntryService::replaceResourceByEntry)."""
        with self.lock:
            entry = self.live_entry(entry_id)
            if entry.status == EntryStatus.NO_CONTENT:
                self._check_resource(resource)
                self._attach(entry, resource)  # no content yet: it takes the content directly
                return entry
            if entry.replacing_entry_id:
                raise errors.replacement_exists()
            self._check_resource(resource)
            now = self.now()
            temp = MediaEntry(
                id=self.new_id(), partner_id=entry.partner_id, name=entry.name,
                user_id=entry.user_id, creator_id=entry.creator_id, created_at=now,
                updated_at=now, status=EntryStatus.PRECONVERT, media_type=entry.media_type,
                replaced_entry_id=entry.id, display_in_search=-1, root_entry_id=entry.id,
            )
            self._index_entry(temp)
            entry.replacing_entry_id = temp.id
            entry.replacement_status = (
                ReplacementStatus.NOT_READY_AND_NOT_APPROVED
                if self.partner.replacement_requires_approval
                else ReplacementStatus.APPROVED_BUT_NOT_READY
            )
            entry.updated_at = max(now, entry.updated_at + 1)
            self._attach(temp, resource)
            return entry

    def _temp_ready(self, temp: MediaEntry) -> None:
        original = self.entries.get(temp.replaced_entry_id or "")
        if original is None or original.replacing_entry_id != temp.id:
            return
        if original.replacement_status == ReplacementStatus.APPROVED_BUT_NOT_READY:
            self._swap(original, temp)
        elif original.replacement_status == ReplacementStatus.NOT_READY_AND_NOT_APPROVED:
            original.replacement_status = ReplacementStatus.READY_BUT_NOT_APPROVED
            original.updated_at = self.now()

    def approve_replace(self, entry_id: str) -> MediaEntry:
        with self.lock:
            entry = self.live_entry(entry_id)
            status = entry.replacement_status
            if not entry.replacing_entry_id or status in (ReplacementStatus.NONE,
                                                          ReplacementStatus.FAILED):
                raise errors.entry_not_replaced(entry_id)
            if status == ReplacementStatus.READY_BUT_NOT_APPROVED:
                self._swap(entry, self.entries[entry.replacing_entry_id])
            elif status == ReplacementStatus.NOT_READY_AND_NOT_APPROVED:
                entry.replacement_status = ReplacementStatus.APPROVED_BUT_NOT_READY
                entry.updated_at = self.now()
            return entry

    def cancel_replace(self, entry_id: str) -> MediaEntry:
        with self.lock:
            entry = self.live_entry(entry_id)
            temp = self.entries.get(entry.replacing_entry_id or "")
            if temp is not None:
                self._drop_entry(temp)
            entry.replacing_entry_id = None
            entry.replacement_status = ReplacementStatus.NONE
            entry.updated_at = self.now()
            return entry

    def _swap(self, original: MediaEntry, temp: MediaEntry) -> None:
        now = self.now()
        for flavor in self.live_assets(self.flavors_by_entry, original.id):
            flavor.status = FlavorStatus.DELETED
            flavor.deleted_at = flavor.updated_at = now
        for flavor in list(self.flavors_by_entry.get(temp.id, ())):
            self.move_asset(flavor, original.id)
        for thumb in list(self.thumbs_by_entry.get(temp.id, ())):
            if has_tag(thumb.tags, DEFAULT_THUMB_TAG):
                self.clear_default_thumb(original)
                original.thumbnail_url = download_path(original.partner_id, "thumb", thumb.id,
                                                       "jpg")
            self.move_asset(thumb, original.id)
        for name in ("duration", "ms_duration", "width", "height", "data_url", "download_url"):
            setattr(original, name, getattr(temp, name))
        original.status = EntryStatus.READY
        original.replacing_entry_id = None
        original.replacement_status = ReplacementStatus.NONE
        original.updated_at = max(now, original.updated_at + 1)
        self._refresh_flavor_ids(original)
        temp.status = EntryStatus.DELETED
        temp.updated_at = now
