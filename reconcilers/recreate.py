"""recreate: bring a deleted (purged) entry back into Kaltura as a NEW entry, from its archive.

Kaltura never reuses an entry id, so the archive's manifest records the mapping: ``recreating``
(the new entry, written right after ``media.add``, so a re-run continues with it instead of
creating another) with the side assets already re-added, then ``recreated_as`` once done. Steps
(journalled): ``thaw`` if the copy is frozen (the caller waits or comes back later); ``add``
(``media.add`` with the manifest's name, description, tags, category names, referenceId, owner
and media type); ``content`` (``media.addContent`` from a presigned GET of the copy that Kaltura
fetches itself, or an upload token streamed from a directory archive); once Kaltura has converted
it, ``verify`` (the new original has the copy's size); ``assets`` (thumbnails — the archived
default made the default again —, captions with their language, label and format, attachments
with their file name and title; each file checked against its recorded sha256 first); and
``recreated``. Every step is idempotent; ``run`` returns ``waiting`` while S3 or Kaltura work.
"""

from __future__ import annotations

import hashlib
from typing import Any

from policies.errors import IntegrityError, PermanentError
from policies.observed import TAG_ARCHIVED, TAG_REPLACED, RestoreStatus
from reconcilers import content, manifest, ports
from reconcilers.base import Context, Needs, Outcome
from reconcilers.ports import AssetKind, EntryDetails
from reconcilers.thaw import Thaw

ACTION = "recreate"
READY, NO_CONTENT = 2, 7
FAILED_STATUSES = frozenset({-2, -1})  # ERROR_IMPORTING, ERROR_CONVERTING
_KINDS = (("thumbnails", AssetKind.THUMB), ("captions", AssetKind.CAPTION),
          ("attachments", AssetKind.ATTACHMENT))
_OUR_TAGS = frozenset({TAG_ARCHIVED, TAG_REPLACED})


class Recreate:
    name = ACTION
    needs = Needs(
        steps=("add", "content", "verify", "asset", "recreated"),
        kaltura=(ports.ADD_ENTRY | ports.ENTRY | ports.ADD_CONTENT | ports.THUMB_FROM_BYTES
                 | ports.ADD_ASSET),
        s3=ports.S3_READ | ports.S3_LIST | ports.S3_WRITE,
    )
    # a frozen copy is thawed first
    uses: tuple[str, ...] = ("thaw",)

    def run(self, entry_id: str, ctx: Context) -> Outcome:  # noqa: C901 — the recreate steps in order, each resumable after a crash
        """``done`` with the new entry id as its message, or ``waiting`` (thaw, conversion)."""
        document = manifest.read(ctx.archive, ctx.settings.prefix, entry_id)
        if document is None:
            raise PermanentError(f"no archive manifest for {entry_id} under "
                                 f"{ctx.archive.bucket}; check the entry id and storage settings")
        if document.get("recreated_as"):
            return Outcome.skipped(str(document["recreated_as"]))
        copy = content.find_copy(ctx, entry_id)
        if copy is None:
            raise PermanentError(f"{entry_id}: the manifest names no archived original to "
                                 "recreate it from")
        if not copy.info.readable:
            if copy.info.restore is RestoreStatus.FROZEN:
                Thaw().run(entry_id, ctx)
            return Outcome.waiting(f"thawing the archive copy {copy.key}",
                                   ctx.settings.thaw_poll, thawing=True)
        progress = dict(document.get("recreating") or {})
        if not progress.get("entry_id"):
            progress = {"entry_id": self._add(ctx, entry_id, document), "assets": {}}
            document = self._save(ctx, document, progress)
        new_id = str(progress["entry_id"])
        new = ctx.kaltura.entry(new_id)
        if new.status == NO_CONTENT:
            self._content(ctx, entry_id, new_id, copy)
            return Outcome.waiting(f"Kaltura is importing {new_id}'s content",
                                   ctx.settings.poll_interval)
        if new.status in FAILED_STATUSES:
            raise PermanentError(f"Kaltura could not import the content of {new_id} (status "
                                 f"{new.status}); delete that entry and run recreate again")
        original = new.original
        if new.status != READY or original is None or original.status != READY:
            return Outcome.waiting(f"Kaltura is converting {new_id}", ctx.settings.poll_interval)
        with ctx.step(entry_id, ACTION, "verify", before={"new_entry_id": new_id}) as after:
            if original.size_bytes != copy.info.size_bytes:
                raise IntegrityError(f"{new_id}'s original has {original.size_bytes} bytes, the "
                                     f"archive copy {copy.info.size_bytes}")
            after["size"] = original.size_bytes
        self._assets(ctx, entry_id, new, document, progress)
        with ctx.step(entry_id, ACTION, "recreated", before={"new_entry_id": new_id}) as after:
            done = {k: v for k, v in document.items() if k != "recreating"}
            done["recreated_as"] = new_id
            manifest.write(ctx.archive, ctx.settings.prefix, done)
            after.update(old_entry_id=entry_id, new_entry_id=new_id)
        return Outcome.done(new_id)

    # -- steps ---------------------------------------------------------------------------------

    def _add(self, ctx: Context, entry_id: str, document: dict[str, Any]) -> str:
        tags = [t for t in document.get("tags") or [] if t not in _OUR_TAGS]
        fields = {
            "name": str(document.get("name") or entry_id),
            "description": str(document.get("description") or ""),
            "tags": ", ".join(tags),
            "categories": str(document.get("categories") or ""),
            "referenceId": str(document.get("reference_id") or ""),
            "userId": str(document.get("owner") or ""),
            "mediaType": str(document.get("media_type") or 1),
        }
        with ctx.step(entry_id, ACTION, "add", before=fields) as after:
            new_id = ctx.kaltura.add_entry(fields)
            after["new_entry_id"] = new_id
        return new_id

    def _content(self, ctx: Context, entry_id: str, new_id: str, copy: content.Copy) -> None:
        via = ctx.settings.restore_via
        with ctx.step(entry_id, ACTION, "content",
                      before={"new_entry_id": new_id, "key": copy.key, "via": via}):
            if via == "upload":
                body = ctx.archive.open_read(copy.key)
                try:
                    ctx.kaltura.add_content_from_upload(new_id, body, copy.info.size_bytes,
                                                        copy.key.rsplit("/", 1)[-1])
                finally:
                    body.close()
            else:
                url = ctx.archive.presign_get(copy.key, ctx.settings.presign_expiry)
                ctx.kaltura.add_content_from_url(new_id, url)

    def _assets(self, ctx: Context, entry_id: str, new: EntryDetails, document: dict[str, Any],
                progress: dict[str, Any]) -> None:
        added: dict[str, str] = dict(progress.get("assets") or {})
        for field, kind in _KINDS:
            for item in document.get(field) or []:
                old_id, key = str(item.get("id")), item.get("key")
                if not key or old_id in added:
                    continue
                with ctx.step(entry_id, ACTION, "asset",
                              before={"new_entry_id": new.entry_id, "key": key}) as after:
                    data = ctx.archive.get_bytes(str(key))
                    if item.get("sha256") and hashlib.sha256(data).hexdigest() != item["sha256"]:
                        raise IntegrityError(f"{key} does not match the sha256 recorded when "
                                             "it was archived")
                    name = str(item.get("filename") or key.rsplit("/", 1)[-1])
                    if kind is AssetKind.THUMB and item.get("default"):
                        added[old_id] = ctx.kaltura.set_default_thumb_from_bytes(
                            new.entry_id, data, name)
                    else:
                        added[old_id] = ctx.kaltura.add_asset(
                            new.entry_id, kind, data, name, _asset_fields(item))
                    after["asset_id"] = added[old_id]
                # Kept as it goes: a re-run after a kill does not add the same asset twice.
                progress = {**progress, "assets": dict(added)}
                document = self._save(ctx, document, progress)

    def _save(self, ctx: Context, document: dict[str, Any], progress: dict[str, Any]
              ) -> dict[str, Any]:
        updated = {**document, "recreating": progress}
        manifest.write(ctx.archive, ctx.settings.prefix, updated)
        return updated


def _asset_fields(item: dict[str, Any]) -> dict[str, str]:
    fields = {"language": item.get("language"), "label": item.get("label"),
              "format": item.get("format"), "fileExt": item.get("ext"),
              "filename": item.get("filename"), "title": item.get("label")}
    return {k: str(v) for k, v in fields.items() if v}
