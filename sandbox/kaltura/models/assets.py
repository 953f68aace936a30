"""Flavors, thumbnails, captions and attachments (reference sections 7 and 9).

Assets are indexed by entry, so ``flavorAsset.list`` with ``entryIdIn`` of 500 ids touches only
those entries' assets. Deleted assets are never listed. Download URLs are built as paths here and
prefixed with the server's base URL by the action handlers (``ctx.base_url``).
"""

from __future__ import annotations

import hashlib
import threading
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from sandbox.kaltura.content import BytesContent, Content
from sandbox.kaltura.models import errors
from sandbox.kaltura.models.listing import page, split_in
from sandbox.kaltura.models.state import (
    DEFAULT_THUMB_TAG,
    TOKEN_RESOURCE,
    URL_RESOURCE,
    BackendState,
    download_path,
    has_tag,
)
from sandbox.kaltura.records import (
    AttachmentAsset,
    CaptionAsset,
    FlavorAsset,
    FlavorStatus,
    ListResponse,
    MediaEntry,
    ThumbAsset,
)

THUMB_READY, THUMB_QUEUED, THUMB_ERROR, THUMB_IMPORTING = 2, 0, -1, 7
ASSET_QUEUED = 0  # KalturaCaptionAssetStatus / KalturaAttachmentAssetStatus: 0 QUEUED, 2 READY


def thumb_bytes(seed: str) -> bytes:
    """A small deterministic JPEG-framed image body for generated thumbnails."""
    body = b"".join(hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(64))
    header = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return header + body + b"\xff\xd9"


def _filter_assets(candidates: Iterable[Any], f: Mapping[str, Any]) -> list[Any]:
    items = [a for a in candidates if a.status != 3]  # deleted assets are never listed
    if f.get("statusEqual") not in (None, ""):
        status = int(f["statusEqual"])
        items = [a for a in items if a.status == status]
    if f.get("statusIn"):
        statuses = {int(s) for s in split_in(f["statusIn"])}
        items = [a for a in items if a.status in statuses]
    if f.get("statusNotIn"):
        excluded = {int(s) for s in split_in(f["statusNotIn"])}
        items = [a for a in items if a.status not in excluded]
    if f.get("flavorParamsIdEqual") not in (None, ""):
        params = int(f["flavorParamsIdEqual"])
        items = [a for a in items if getattr(a, "flavor_params_id", None) == params]
    if f.get("flavorParamsIdIn"):
        params_in = {int(p) for p in split_in(f["flavorParamsIdIn"])}
        items = [a for a in items if getattr(a, "flavor_params_id", None) in params_in]
    if f.get("tagsLike"):
        wanted = str(f["tagsLike"]).strip().lower()
        items = [a for a in items if has_tag(a.tags.lower(), wanted)]
    return items


class AssetsMixin(BackendState):
    """flavorAsset, thumbAsset, caption_captionasset and attachment_attachmentasset."""

    def _list_assets(self, table: Mapping[str, Any], by_entry: Mapping[str, list[Any]],
                     f: Mapping[str, Any] | None, pager: Mapping[str, Any] | None,
                     kind: str) -> ListResponse:
        f = f or {}
        candidates: Iterable[Any]
        if f.get("entryIdEqual") not in (None, ""):
            candidates = list(by_entry.get(str(f["entryIdEqual"]), ()))
        elif f.get("entryIdIn"):
            candidates = [a for e in dict.fromkeys(split_in(f["entryIdIn"]))
                          for a in by_entry.get(e, ())]
        elif f.get("idEqual") not in (None, ""):
            candidates = [table[i] for i in [str(f["idEqual"])] if i in table]
        elif f.get("idIn"):
            candidates = [table[i] for i in dict.fromkeys(split_in(f["idIn"])) if i in table]
        else:
            candidates = table.values()
        items = _filter_assets(candidates, f)
        if f.get("idEqual") not in (None, ""):
            items = [a for a in items if a.id == str(f["idEqual"])]
        if f.get("idIn"):
            ids = set(split_in(f["idIn"]))
            items = [a for a in items if a.id in ids]
        return ListResponse(kind, page(items, pager), len(items))

    # -- flavors ------------------------------------------------------------------------------

    def list_flavors(self, f: Mapping[str, Any] | None, pager: Mapping[str, Any] | None
                     ) -> ListResponse:
        return self._list_assets(self.flavors, self.flavors_by_entry, f, pager,
                                 "KalturaFlavorAssetListResponse")

    def get_flavor(self, flavor_id: str) -> FlavorAsset:
        flavor: FlavorAsset = self.require(self.flavors, flavor_id,
                                           errors.flavor_not_found(flavor_id))
        return flavor

    def flavor_url(self, flavor_id: str) -> str:
        flavor = self.get_flavor(flavor_id)
        if flavor.status != FlavorStatus.READY:
            raise errors.flavor_not_ready()
        return download_path(flavor.partner_id, "flavor", flavor.id, flavor.file_ext)

    def flavor_content(self, flavor_id: str) -> Content:
        """The bytes behind a flavor download URL (the download endpoint serves them)."""
        with self.lock:
            flavor = self.get_flavor(flavor_id)
            if flavor.status != FlavorStatus.READY or flavor.content is None:
                raise errors.flavor_not_ready()
            return flavor.content

    def delete_flavor(self, flavor_id: str) -> None:
        with self.lock:
            flavor = self.get_flavor(flavor_id)
            now = self.now()
            flavor.status = FlavorStatus.DELETED
            flavor.deleted_at = flavor.updated_at = now
            entry = self.entries.get(flavor.entry_id)
            if entry is not None:
                before = (entry.status, entry.flavor_params_ids)
                self._refresh_flavor_ids(entry)
                # entry->save() after the sync: a modified entry gets a new updatedAt
                # (alpha/lib/model/om/Baseentry.php ``preUpdate``).
                if (entry.status, entry.flavor_params_ids) != before:
                    entry.updated_at = max(now, entry.updated_at + 1)

    def _ready_source(self, entry_id: str) -> FlavorAsset | None:
        for flavor in self.flavors_by_entry.get(entry_id, ()):
            if flavor.is_original and flavor.status == FlavorStatus.READY:
                return flavor
        return None

    def convert_flavor(self, entry_id: str, params_id: int) -> None:
        """Queue (or re-queue) the flavor of ``params_id``; READY after the conversion delay."""
        with self.lock:
            entry = self.live_entry(entry_id)
            source = self._ready_source(entry.id)
            if source is None:
                raise errors.original_missing()
            existing = [f for f in self.live_assets(self.flavors_by_entry, entry.id)
                        if f.flavor_params_id == params_id]
            if params_id == 0:
                return  # the source is already there
            if existing:
                flavor = existing[0]
            else:
                flavor = self.derived_flavor(entry, source, params_id, 640, 360, 0.125)
                self.add_asset(flavor)
            self._queue_flavor(flavor)

    def reconvert_flavor(self, flavor_id: str) -> None:
        with self.lock:
            flavor = self.get_flavor(flavor_id)
            if flavor.is_original:
                raise errors.reconvert_original()
            if self._ready_source(flavor.entry_id) is None:
                raise errors.original_missing()
            self._queue_flavor(flavor)

    def _queue_flavor(self, flavor: FlavorAsset) -> None:
        flavor.status = FlavorStatus.CONVERTING
        flavor.updated_at = self.now()
        self.schedule(self.partner.conversion_delay, "flavor", flavor.entry_id, flavor.id)
        if self.partner.conversion_delay <= 0:
            self.tick()

    # -- thumbnails ---------------------------------------------------------------------------

    def list_thumbs(self, f: Mapping[str, Any] | None, pager: Mapping[str, Any] | None
                    ) -> ListResponse:
        return self._list_assets(self.thumbs, self.thumbs_by_entry, f, pager,
                                 "KalturaThumbAssetListResponse")

    def get_thumb(self, thumb_id: str) -> ThumbAsset:
        thumb: ThumbAsset = self.require(self.thumbs, thumb_id, errors.thumb_not_found(thumb_id))
        return thumb

    def thumb_url(self, thumb_id: str) -> str:
        thumb = self.get_thumb(thumb_id)
        if thumb.status != THUMB_READY:
            raise errors.thumb_not_ready()
        return download_path(thumb.partner_id, "thumb", thumb.id, thumb.file_ext)

    def _new_thumb(self, entry: MediaEntry, tags: str = "", status: int = THUMB_QUEUED,
                   content: Content | None = None, **fields: Any) -> ThumbAsset:
        now = self.now()
        thumb = ThumbAsset(id=self.new_id(), entry_id=entry.id, partner_id=entry.partner_id,
                           content=content, size=content.size if content else 0,
                           size_in_bytes=content.size if content else 0, tags=tags,
                           created_at=now, updated_at=now, status=status, **fields)
        self.add_asset(thumb)
        return thumb

    def generate_thumb(self, entry: MediaEntry, offset: float = 0.0, *, make_default: bool = False,
                       width: int = 0, height: int = 0) -> ThumbAsset:
        source = self._ready_source(entry.id)
        if source is None:
            raise errors.thumb_not_ready()
        content = BytesContent(thumb_bytes(f"{source.id}:{offset}"))
        thumb = self._new_thumb(entry, status=THUMB_READY, content=content,
                                width=width or source.width, height=height or source.height,
                                description=f"videoOffset={offset:g}")
        if make_default:
            self._make_default(entry, thumb)
        return thumb

    def generate_thumb_for(self, entry_id: str, params: Mapping[str, Any]) -> ThumbAsset:
        with self.lock:
            entry = self.live_entry(entry_id)
            offset = float(params.get("videoOffset") or 0)
            return self.generate_thumb(entry, offset, width=int(params.get("width") or 0),
                                       height=int(params.get("height") or 0))

    def update_thumbnail(self, entry_id: str, offset: float) -> MediaEntry:
        """Legacy media.updateThumbnail: a thumb at ``offset`` becomes the entry's default."""
        with self.lock:
            entry = self.live_entry(entry_id)
            if self._ready_source(entry.id) is None:
                raise errors.original_missing()
            self.generate_thumb(entry, offset, make_default=True)
            entry.updated_at = max(self.now(), entry.updated_at + 1)
            return entry

    def clear_default_thumb(self, entry: MediaEntry) -> None:
        for other in self.thumbs_by_entry.get(entry.id, ()):
            if has_tag(other.tags, DEFAULT_THUMB_TAG):
                other.tags = ",".join(t for t in (s.strip() for s in other.tags.split(","))
                                      if t and t != DEFAULT_THUMB_TAG)

    def _make_default(self, entry: MediaEntry, thumb: ThumbAsset) -> None:
        self.clear_default_thumb(entry)
        thumb.tags = ",".join(t for t in [*thumb.tags.split(","), DEFAULT_THUMB_TAG] if t.strip())
        entry.thumbnail_url = download_path(entry.partner_id, "thumb", thumb.id, thumb.file_ext)

    def set_default_thumb(self, thumb_id: str) -> None:
        with self.lock:
            thumb = self.get_thumb(thumb_id)
            if thumb.status != THUMB_READY:
                raise errors.thumb_not_ready()
            entry = self.live_entry(thumb.entry_id)
            self._make_default(entry, thumb)
            entry.updated_at = max(self.now(), entry.updated_at + 1)

    def delete_thumb(self, thumb_id: str) -> None:
        with self.lock:
            thumb = self.get_thumb(thumb_id)
            if has_tag(thumb.tags, DEFAULT_THUMB_TAG):
                raise errors.thumb_is_default(thumb_id)
            thumb.status = 3
            thumb.updated_at = self.now()

    def add_thumb(self, entry_id: str, fields: Mapping[str, Any]) -> ThumbAsset:
        with self.lock:
            entry = self.live_entry(entry_id)
            tags = str(fields.get("tags") or "")
            return self._new_thumb(entry, tags=tags, file_ext=str(fields.get("fileExt") or "jpg"))

    def add_thumb_from_url(self, entry_id: str, url: str) -> ThumbAsset:
        with self.lock:
            entry = self.live_entry(entry_id)
            thumb = self._new_thumb(entry)
            self._fill_thumb(thumb, {"objectType": URL_RESOURCE, "url": url})
            return thumb

    def set_thumb_content(self, thumb_id: str, resource: Mapping[str, Any]) -> ThumbAsset:
        with self.lock:
            thumb = self.get_thumb(thumb_id)
            self._fill_thumb(thumb, resource)
            return thumb

    def _fill_thumb(self, thumb: ThumbAsset, resource: Mapping[str, Any]) -> None:
        kind = str(resource.get("objectType", ""))
        if kind == TOKEN_RESOURCE:
            self._thumb_loaded(thumb, self.take_token(resource))
        elif kind == URL_RESOURCE and resource.get("url"):
            thumb.status = THUMB_IMPORTING
            self._fetch_thumb(thumb.id, str(resource["url"]))
        else:
            raise errors.resource_not_supported(kind or "null")

    def _thumb_loaded(self, thumb: ThumbAsset, data: bytes | None) -> None:
        thumb.updated_at = self.now()
        if data is None:
            thumb.status = THUMB_ERROR
            return
        thumb.content = BytesContent(data)
        thumb.size = thumb.size_in_bytes = len(data)  # a thumbnail's size is bytes too
        thumb.status = THUMB_READY

    def _fetch_thumb(self, thumb_id: str, url: str) -> None:
        # Fetched off the request thread: the URL may be this very server, whose handlers need
        # the backend lock this action holds.
        def fetch() -> None:
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    data: bytes | None = response.read()
            except Exception:
                data = None
            with self.lock:
                thumb = self.thumbs.get(thumb_id)
                if thumb is not None and thumb.status == THUMB_IMPORTING:
                    self._thumb_loaded(thumb, data)

        thread = threading.Thread(target=fetch, name=f"thumb-{thumb_id}", daemon=True)
        self._imports = [t for t in self._imports if t.is_alive()] + [thread]
        thread.start()

    # -- captions and attachments -------------------------------------------------------------

    def list_captions(self, f: Mapping[str, Any] | None, pager: Mapping[str, Any] | None
                      ) -> ListResponse:
        return self._list_assets(self.captions, self.captions_by_entry, f, pager,
                                 "KalturaCaptionAssetListResponse")

    def get_caption(self, caption_id: str) -> CaptionAsset:
        caption: CaptionAsset = self.require(self.captions, caption_id,
                                             errors.caption_not_found(caption_id))
        return caption

    def caption_url(self, caption_id: str) -> str:
        caption = self.get_caption(caption_id)
        return download_path(caption.partner_id, "caption", caption.id, caption.file_ext)

    def list_attachments(self, f: Mapping[str, Any] | None, pager: Mapping[str, Any] | None
                         ) -> ListResponse:
        return self._list_assets(self.attachments, self.attachments_by_entry, f, pager,
                                 "KalturaAttachmentAssetListResponse")

    def get_attachment(self, attachment_id: str) -> AttachmentAsset:
        attachment: AttachmentAsset = self.require(self.attachments, attachment_id,
                                                   errors.attachment_not_found(attachment_id))
        return attachment

    def attachment_url(self, attachment_id: str) -> str:
        attachment = self.get_attachment(attachment_id)
        return download_path(attachment.partner_id, "attachment", attachment.id,
                             attachment.file_ext)

    def add_caption(self, entry_id: str, fields: Mapping[str, Any]) -> CaptionAsset:
        """caption_captionasset.add: a caption with no content yet (status QUEUED)."""
        with self.lock:
            entry = self.live_entry(entry_id)
            now = self.now()
            caption = CaptionAsset(id=self.new_id(), entry_id=entry.id,
                                   partner_id=entry.partner_id, created_at=now, updated_at=now,
                                   status=ASSET_QUEUED)
            for name, attr in (("language", "language"), ("languageCode", "language_code"),
                               ("label", "label"), ("format", "format"), ("tags", "tags"),
                               ("fileExt", "file_ext")):
                if fields.get(name) not in (None, ""):
                    setattr(caption, attr, str(fields[name]))
            if fields.get("isDefault") not in (None, ""):
                caption.is_default = str(fields["isDefault"]).lower() in ("1", "true")
            self.add_asset(caption)
            return caption

    def add_attachment(self, entry_id: str, fields: Mapping[str, Any]) -> AttachmentAsset:
        """attachment_attachmentasset.add: an attachment with no content yet (QUEUED)."""
        with self.lock:
            entry = self.live_entry(entry_id)
            now = self.now()
            attachment = AttachmentAsset(id=self.new_id(), entry_id=entry.id,
                                         partner_id=entry.partner_id, created_at=now,
                                         updated_at=now, status=ASSET_QUEUED)
            for name, attr in (("filename", "filename"), ("title", "title"),
                               ("format", "format"), ("tags", "tags"), ("fileExt", "file_ext")):
                if fields.get(name) not in (None, ""):
                    setattr(attachment, attr, str(fields[name]))
            self.add_asset(attachment)
            return attachment

    def set_caption_content(self, caption_id: str, resource: Mapping[str, Any]) -> CaptionAsset:
        with self.lock:
            caption = self.get_caption(caption_id)
            self._set_asset_content(caption, resource)
            return caption

    def set_attachment_content(self, attachment_id: str, resource: Mapping[str, Any]
                               ) -> AttachmentAsset:
        with self.lock:
            attachment = self.get_attachment(attachment_id)
            self._set_asset_content(attachment, resource)
            return attachment

    def _set_asset_content(self, asset: Any, resource: Mapping[str, Any]) -> None:
        # Captions and attachments take an upload token's bytes at once (READY); a URL resource
        # would be imported like a thumbnail's, which nothing here needs yet.
        kind = str(resource.get("objectType", ""))
        if kind != TOKEN_RESOURCE:
            raise errors.resource_not_supported(kind or "null")
        data = self.take_token(resource)
        asset.content = BytesContent(data)
        asset.size = asset.size_in_bytes = len(data)  # bytes for captions and attachments
        asset.status = THUMB_READY
        asset.updated_at = self.now()
        asset.version = int(asset.version or 0) + 1

    def asset_content(self, kind: str, asset_id: str) -> Content:
        """Bytes of a thumb, caption or attachment for the download endpoint."""
        with self.lock:
            asset: Any
            if kind == "thumb":
                asset = self.get_thumb(asset_id)
            elif kind == "caption":
                asset = self.get_caption(asset_id)
            elif kind == "attachment":
                asset = self.get_attachment(asset_id)
            else:
                raise errors.KalturaError("INVALID_OBJECT_TYPE", f'Invalid object type "{kind}"',
                                          {"INVALID_OBJ_TYPE": kind})
            if asset.content is None or asset.status != 2:
                if kind == "thumb":
                    raise errors.thumb_not_ready()
                raise errors.KalturaError(f"{kind.upper()}_ASSET_IS_NOT_READY",
                                          f"The {kind} asset is not ready")
            content: Content = asset.content
            return content
