"""Kaltura mutations and the fresh reads the reconcilers need: the ``KalturaPort`` adapter.

Every call goes through the one :class:`KalturaSession` (pacing, retries, error translation,
counting). What this module adds is the meaning of each mutation:

- tags are changed as a set (add / remove) and read back: Kaltura normalises tags, and a person
  may edit them in the KMC at the same instant, so success means "the tag is now there". A
  change that did not stick is made again here (``TAG_ATTEMPTS``), not by the executor: the
  session retries failed calls, this module retries answers that say the change was lost;
- ``media.updateContent`` with a ``KalturaUrlResource`` (Kaltura fetches a presigned S3 URL
  itself) or a ``KalturaUploadedFileTokenResource`` (a chunked ``uploadToken.upload`` streamed
  from a source, no local file). The replacement is asynchronous (reference/kaltura-api.md §8):
  this returns at once with ``replacingEntryId`` set; callers poll :meth:`entry` later;
- thumbnails: list, getUrl, ``addFromUrl`` then ``setAsDefault``; captions and attachments:
  list and getUrl, for the archive's side copies.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping
from typing import Any

from KalturaClient.Plugins.Attachment import (
    KalturaAttachmentAsset,
    KalturaAttachmentAssetFilter,
)
from KalturaClient.Plugins.Caption import (
    KalturaCaptionAsset,
    KalturaCaptionAssetFilter,
)
from KalturaClient.Plugins.Core import (
    KalturaFilterPager,
    KalturaFlavorAssetFilter,
    KalturaMediaEntry,
    KalturaMediaType,
    KalturaThumbAsset,
    KalturaThumbAssetFilter,
    KalturaUploadedFileTokenResource,
    KalturaUploadToken,
    KalturaUrlResource,
)

from controller.adapters.kaltura.read import (
    FLAVOR_FIELDS,
    fields_of,
    int_of,
    split_tags,
    to_flavor,
    value_of,
)
from controller.adapters.kaltura.session import KalturaSession
from controller.errors import IntegrityError, PermanentError, Source, TransientError
from reconcilers.ports import AssetKind, AssetRef, EntryDetails, Readable

TAG_ATTEMPTS = 3  # a tag change read back without it (a concurrent KMC edit) is made again
UPLOAD_CHUNK = 8 << 20  # uploadToken.upload has a hard-coded 10 s socket timeout (reference §1)
DEFAULT_THUMB_TAG = "default_thumb"
THUMB_READY, THUMB_ERROR = 2, -1  # KalturaThumbAssetStatus
_PAGE = 500


class _NamedBytes(io.BytesIO):
    """An in-memory chunk the client can send as a file (it needs a ``name`` for the form)."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name


class KalturaWriter:
    """The KalturaPort over a :class:`KalturaSession`."""

    def __init__(self, session: KalturaSession) -> None:
        self.session = session

    # -- fresh reads ---------------------------------------------------------------------------

    def entry(self, entry_id: str) -> EntryDetails:
        """The entry and its flavors, read now (two calls)."""
        media = self.session.call("media.get", lambda c: c.media.get(entry_id))
        flt = KalturaFlavorAssetFilter()
        flt.entryIdEqual = entry_id
        pager = KalturaFilterPager()
        pager.pageSize = _PAGE
        listed = self.session.call("flavorasset.list", lambda c: c.flavorAsset.list(flt, pager))
        last_played = int_of(media.lastPlayedAt)
        return EntryDetails(
            entry_id=media.id,
            partner_id=int_of(media.partnerId),
            name=value_of(media.name, ""),
            description=value_of(media.description, ""),
            user_id=value_of(media.userId, ""),
            creator_id=value_of(media.creatorId, ""),
            tags=split_tags(value_of(media.tags, "")),
            categories=value_of(media.categories, ""),
            category_ids=value_of(media.categoriesIds, ""),
            status=int_of(media.status),
            created_at=int_of(media.createdAt),
            updated_at=int_of(media.updatedAt),
            last_played_at=last_played or None,
            plays=int_of(media.plays),
            duration=int_of(media.duration),
            media_type=int_of(media.mediaType, 1),
            reference_id=value_of(media.referenceId, ""),
            replacement_status=int_of(media.replacementStatus),
            replacing_entry_id=value_of(media.replacingEntryId, None) or None,
            flavors=tuple(to_flavor(fields_of(asset, FLAVOR_FIELDS))
                          for asset in (listed.objects or [])),
        )

    def flavor_url(self, flavor_id: str) -> str:
        return str(
            self.session.call("flavorasset.getUrl", lambda c: c.flavorAsset.getUrl(flavor_id))
        )

    def assets(self, entry_id: str) -> tuple[AssetRef, ...]:
        """Thumbnails, captions and attachments of the entry (three list calls)."""
        pager = KalturaFilterPager()
        pager.pageSize = _PAGE
        found: list[AssetRef] = []

        thumbs = KalturaThumbAssetFilter()
        thumbs.entryIdEqual = entry_id
        for t in self.session.call("thumbasset.list", lambda c: c.thumbAsset.list(thumbs, pager)
                                   ).objects or []:
            found.append(AssetRef(
                AssetKind.THUMB, t.id, value_of(t.fileExt, "") or "jpg", _size(t),
                is_default=DEFAULT_THUMB_TAG in split_tags(value_of(t.tags, "")),
            ))
        captions = KalturaCaptionAssetFilter()
        captions.entryIdEqual = entry_id
        for cap in self.session.call(
            "caption_captionasset.list", lambda c: c.caption.captionAsset.list(captions, pager)
        ).objects or []:
            found.append(AssetRef(
                AssetKind.CAPTION, cap.id, value_of(cap.fileExt, "") or "srt", _size(cap),
                label=value_of(cap.label, "") or "",
                extra=(("language", str(value_of(cap.language, "") or "")),
                       ("format", str(value_of(cap.format, "") or ""))),
            ))
        attachments = KalturaAttachmentAssetFilter()
        attachments.entryIdEqual = entry_id
        for att in self.session.call(
            "attachment_attachmentasset.list",
            lambda c: c.attachment.attachmentAsset.list(attachments, pager),
        ).objects or []:
            found.append(AssetRef(
                AssetKind.ATTACHMENT, att.id, value_of(att.fileExt, "") or "bin", _size(att),
                label=value_of(att.title, "") or "",
                extra=(("filename", str(value_of(att.filename, "") or "")),),
            ))
        return tuple(found)

    def asset_url(self, asset: AssetRef) -> str:
        if asset.kind is AssetKind.THUMB:
            return str(self.session.call(
                "thumbasset.getUrl", lambda c: c.thumbAsset.getUrl(asset.asset_id)))
        if asset.kind is AssetKind.CAPTION:
            return str(self.session.call(
                "caption_captionasset.getUrl",
                lambda c: c.caption.captionAsset.getUrl(asset.asset_id)))
        return str(self.session.call(
            "attachment_attachmentasset.getUrl",
            lambda c: c.attachment.attachmentAsset.getUrl(asset.asset_id)))

    # -- tags ----------------------------------------------------------------------------------

    def _set_tags(self, entry_id: str, change: Any) -> frozenset[str]:
        current = split_tags(value_of(self.session.call(
            "media.get", lambda c: c.media.get(entry_id)).tags, ""))
        wanted = change(current)
        if wanted != current:
            patch = KalturaMediaEntry()
            patch.tags = ", ".join(sorted(wanted))
            self.session.call("media.update", lambda c: c.media.update(entry_id, patch))
        # Read back: the server normalises tags and a person may be editing them right now.
        return split_tags(value_of(self.session.call(
            "media.get", lambda c: c.media.get(entry_id)).tags, ""))

    def add_tags(self, entry_id: str, tags: frozenset[str]) -> frozenset[str]:
        for _attempt in range(TAG_ATTEMPTS):
            after = self._set_tags(entry_id, lambda current: current | tags)
            if tags <= after:
                return after
        raise TransientError(f"tags {sorted(tags - after)} did not stick on {entry_id}",
                             source=Source.KALTURA)

    def remove_tags(self, entry_id: str, tags: frozenset[str]) -> frozenset[str]:
        for _attempt in range(TAG_ATTEMPTS):
            after = self._set_tags(entry_id, lambda current: current - tags)
            if not tags & after:
                return after
        raise TransientError(f"tags {sorted(tags & after)} are still on {entry_id}",
                             source=Source.KALTURA)

    # -- content -------------------------------------------------------------------------------

    def update_content_from_url(self, entry_id: str, url: str) -> EntryDetails:
        """Start the asynchronous replacement from a URL Kaltura fetches itself."""
        resource = KalturaUrlResource()
        resource.url = url
        self.session.call(
            "media.updateContent", lambda c: c.media.updateContent(entry_id, resource)
        )
        return self.entry(entry_id)

    def update_content_from_upload(
        self, entry_id: str, source: Readable, size: int, file_name: str
    ) -> EntryDetails:
        """Upload ``size`` bytes of ``source`` in chunks to an upload token, then replace."""
        token_id = self.upload(source, size, file_name)
        resource = KalturaUploadedFileTokenResource()
        resource.token = token_id
        self.session.call(
            "media.updateContent", lambda c: c.media.updateContent(entry_id, resource)
        )
        return self.entry(entry_id)

    def upload(self, source: Readable, size: int, file_name: str) -> str:
        """A chunked upload token holding exactly ``size`` bytes of ``source``; its id."""
        token = KalturaUploadToken()
        token.fileName = file_name
        token.fileSize = size
        token_id = self.session.call("uploadtoken.add", lambda c: c.uploadToken.add(token)).id
        offset = 0
        while True:
            data = source.read(min(UPLOAD_CHUNK, size - offset)) if size - offset else b""
            if len(data) != min(UPLOAD_CHUNK, size - offset):
                raise IntegrityError(f"source of {file_name} ended at {offset + len(data)} of "
                                     f"{size} bytes; nothing was replaced")
            final = offset + len(data) >= size
            answer = self.session.call(
                "uploadtoken.upload",
                _upload_chunk(token_id, _NamedBytes(data, file_name), offset, final),
            )
            offset += len(data)
            if final:
                break
        uploaded = int_of(getattr(answer, "uploadedFileSize", None), -1)
        if uploaded not in (-1, size):
            raise IntegrityError(f"upload token {token_id} holds {uploaded} of {size} bytes",
                                 source=Source.KALTURA)
        return str(token_id)

    def approve_replacement(self, entry_id: str) -> None:
        """A partner that requires approval holds our replacement READY_BUT_NOT_APPROVED."""
        self.session.call("media.approveReplace", lambda c: c.media.approveReplace(entry_id))

    # -- thumbnails ----------------------------------------------------------------------------

    def set_default_thumb_from_url(
        self, entry_id: str, url: str, *, wait: float = 30.0, poll: float = 0.5
    ) -> str:
        """Kaltura imports the URL asynchronously; setAsDefault needs a READY thumbnail, so the
        thumbnail's status is polled (bounded) before it is made the default."""
        thumb = self.session.call(
            "thumbasset.addFromUrl", lambda c: c.thumbAsset.addFromUrl(entry_id, url))
        thumb_id = str(thumb.id)
        deadline = time.monotonic() + wait
        while int_of(thumb.status) != THUMB_READY:
            if int_of(thumb.status) == THUMB_ERROR:
                raise PermanentError(f"Kaltura could not import thumbnail {thumb.id} from its URL",
                                     source=Source.KALTURA)
            if time.monotonic() > deadline:
                raise TransientError(f"thumbnail {thumb.id} still importing after {wait:.0f} s",
                                     source=Source.KALTURA)
            time.sleep(poll)
            thumb = self.session.call("thumbasset.get", lambda c: c.thumbAsset.get(thumb_id))
        self._make_default(thumb_id)
        return thumb_id

    def set_default_thumb_from_bytes(self, entry_id: str, data: bytes, file_name: str) -> str:
        token_id = self.upload(io.BytesIO(data), len(data), file_name)
        thumb = self.session.call(
            "thumbasset.add", lambda c: c.thumbAsset.add(entry_id, KalturaThumbAsset()))
        resource = KalturaUploadedFileTokenResource()
        resource.token = token_id
        self.session.call(
            "thumbasset.setContent", lambda c: c.thumbAsset.setContent(thumb.id, resource))
        self._make_default(thumb.id)
        return str(thumb.id)

    def _make_default(self, thumb_id: str) -> None:
        self.session.call("thumbasset.setAsDefault", lambda c: c.thumbAsset.setAsDefault(thumb_id))

    # -- deleting and recreating ---------------------------------------------------------------

    def delete_entry(self, entry_id: str) -> None:
        """baseEntry.delete, paced by the session under the policy's ``baseentry.delete``
        budget (Kaltura's ~35 per 10 s); ACTION_BLOCKED slows the class down, never a loop."""
        self.session.call("baseentry.delete", lambda c: c.baseEntry.delete(entry_id))

    def add_entry(self, fields: Mapping[str, str]) -> str:
        """media.add: a new entry with no content (status NO_CONTENT); its id."""
        entry = KalturaMediaEntry()
        entry.mediaType = KalturaMediaType(int(fields.get("mediaType") or 1))
        for name in ("name", "description", "tags", "categories", "referenceId", "userId"):
            if fields.get(name):
                setattr(entry, name, fields[name])
        return str(self.session.call("media.add", lambda c: c.media.add(entry)).id)

    def add_content_from_url(self, entry_id: str, url: str) -> None:
        resource = KalturaUrlResource()
        resource.url = url
        self.session.call("media.addContent", lambda c: c.media.addContent(entry_id, resource))

    def add_content_from_upload(
        self, entry_id: str, source: Readable, size: int, file_name: str
    ) -> None:
        resource = KalturaUploadedFileTokenResource()
        resource.token = self.upload(source, size, file_name)
        self.session.call("media.addContent", lambda c: c.media.addContent(entry_id, resource))

    def add_asset(self, entry_id: str, kind: AssetKind, data: bytes, file_name: str,
                  fields: Mapping[str, str]) -> str:
        """A thumbnail, caption or attachment: ``add`` with its fields, then ``setContent``
        from an upload token of ``data``; its new id."""
        resource = KalturaUploadedFileTokenResource()
        resource.token = self.upload(io.BytesIO(data), len(data), file_name)
        kinds: dict[AssetKind, tuple[str, Callable[[], Any], tuple[str, ...],
                                     Callable[[Any], Any]]] = {
            AssetKind.THUMB: ("thumbasset", KalturaThumbAsset, (), lambda c: c.thumbAsset),
            AssetKind.CAPTION: ("caption_captionasset", KalturaCaptionAsset,
                                ("language", "label", "format", "fileExt"),
                                lambda c: c.caption.captionAsset),
            AssetKind.ATTACHMENT: ("attachment_attachmentasset", KalturaAttachmentAsset,
                                   ("filename", "title", "fileExt"),
                                   lambda c: c.attachment.attachmentAsset),
        }
        label, make, writable, service = kinds[kind]
        asset = make()
        for name in writable:
            if fields.get(name):
                setattr(asset, name, fields[name])
        added = self.session.call(f"{label}.add", lambda c: service(c).add(entry_id, asset))
        self.session.call(f"{label}.setContent",
                          lambda c: service(c).setContent(added.id, resource))
        return str(added.id)

    def make_default_thumb(self, thumb_id: str) -> None:
        self._make_default(thumb_id)


def _upload_chunk(token_id: str, chunk: _NamedBytes, at: int, final: bool) -> Any:
    """One uploadToken.upload call: the first chunk starts the file, later ones resume at
    ``at`` (reference/kaltura-api.md §8)."""
    return lambda client: client.uploadToken.upload(token_id, chunk, at > 0, final,
                                                    at if at > 0 else -1)


def _size(asset: Any) -> int:
    in_bytes = int_of(getattr(asset, "sizeInBytes", None))
    return in_bytes or int_of(getattr(asset, "size", None)) * 1024  # size is in KB
