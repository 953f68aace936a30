"""restore: bring an archived video back into Kaltura in place of its placeholder.

Preconditions: the entry is a placeholder (flavors_deleted) and its copy is readable (a warm
storage class, or thawed; a frozen copy is thawed first and the restore waits). Then
``media.updateContent`` with a ``KalturaUrlResource`` of a presigned GET URL — Kaltura fetches the
bytes itself, they never pass through karchive — or, with ``restore_via: upload``, a chunked
upload streamed from S3. After the swap, and once Kaltura has converted the new original: its
size must equal the copy's; the archived thumbnail becomes the default again; flavors_deleted is
removed (archived_to_s3 stays: the copy stays).
"""

from __future__ import annotations

from policies.errors import IntegrityError
from policies.layout import original_key
from policies.observed import TAG_REPLACED
from reconcilers import adopt, content, manifest, ports
from reconcilers.base import Context, Needs, Outcome
from reconcilers.ports import EntryDetails
from reconcilers.thaw import thaw_first

ACTION = "restore"
READY = 2


class Restore:
    name = ACTION
    needs = Needs(
        steps=("restore", "approve", "verify_legacy", "rekey", "thumbnail", "untag_replaced"),
        kaltura=(ports.ENTRY | ports.UPDATE_CONTENT | ports.APPROVE | ports.FLAVOR_URL
                 | ports.THUMB_FROM_BYTES | ports.TAGS),
        s3=(ports.S3_READ | ports.S3_LIST | ports.S3_WRITE | ports.S3_CHECKSUM | ports.S3_COPY
            | ports.S3_DELETE),
    )
    # a frozen copy is thawed first
    uses: tuple[str, ...] = ("thaw",)

    def run(self, entry_id: str, ctx: Context) -> Outcome:
        entry = ctx.kaltura.entry(entry_id)
        if entry.replacing:
            return content.in_flight(ctx, entry, ACTION)
        copy = content.require_copy(ctx, entry_id, "restore")
        if content.content_is_copy(entry, copy) and not content.is_placeholder(ctx, entry, copy):
            if TAG_REPLACED not in entry.tags:
                return Outcome.skipped("content already restored")
            return self.finish(ctx, entry, copy)
        if TAG_REPLACED not in entry.tags:
            raise IntegrityError(f"{entry_id} is not a placeholder (no {TAG_REPLACED} tag)")
        waiting = thaw_first(ctx, entry_id, copy, "restore")
        if waiting is not None:
            return waiting
        before = {"key": copy.key, "size": copy.info.size_bytes, "via": ctx.settings.restore_via}
        with ctx.step(entry_id, ACTION, "restore", before=before) as after:
            if ctx.settings.restore_via == "upload":
                body = ctx.archive.open_read(copy.key)
                try:
                    name = copy.key.rsplit("/", 1)[-1]
                    started = ctx.kaltura.update_content_from_upload(
                        entry_id, body, copy.info.size_bytes, name)
                finally:
                    body.close()
            else:
                url = ctx.archive.presign_get(copy.key, ctx.settings.presign_expiry)
                started = ctx.kaltura.update_content_from_url(entry_id, url)
            after["replacing_entry_id"] = started.replacing_entry_id
        return Outcome.waiting("restore started", ctx.settings.poll_interval)

    def finish(self, ctx: Context, entry: EntryDetails, copy: content.Copy) -> Outcome:
        """The archived video is back: once converted, verify, thumbnail, untag."""
        original = entry.original
        if entry.status != READY or original is None or original.status != READY:
            return Outcome.waiting("Kaltura is converting the restored video",
                                   ctx.settings.poll_interval)
        if original.size_bytes != copy.info.size_bytes:
            raise IntegrityError(f"{entry.entry_id}: restored original has {original.size_bytes} "
                                 f"bytes, the copy {copy.info.size_bytes}")
        self.rekey(ctx, entry, copy)
        self._adopt(ctx, entry, copy)
        content.put_back_thumbnail(ctx, entry.entry_id, copy.document, ACTION)
        with ctx.step(entry.entry_id, ACTION, "untag_replaced",
                      before={"tags": sorted(entry.tags)}) as after:
            after["tags"] = sorted(ctx.kaltura.remove_tags(entry.entry_id,
                                                           frozenset({TAG_REPLACED})))
        ctx.metrics.bytes_restored(copy.info.size_bytes)
        return Outcome.done("content restored from the archive", copy.info.size_bytes)

    def _adopt(self, ctx: Context, entry: EntryDetails, copy: content.Copy) -> None:
        """A copy the old tool left, now back in Kaltura under a new flavor id: the restored
        bytes are checked against the copy's ETag and, proven, recorded (as an archive would),
        so the next observation sees a current copy. Not proven, nothing is recorded and the
        entry is archived again beside the copy."""
        original = entry.original
        if not copy.legacy or original is None or copy.flavor_id == original.flavor_id:
            return
        sha = adopt.verify(ctx, entry.entry_id, ctx.kaltura.flavor_url(original.flavor_id),
                           copy.info, original.size_bytes, ACTION)
        if sha is not None:
            adopt.record(ctx, entry, original, copy.info, sha, copy.document, "etag")

    def rekey(self, ctx: Context, entry: EntryDetails, copy: content.Copy) -> None:
        """Kaltura gave the restored video a new flavor id; the copy is moved to that id's key
        (a server-side copy, while it is readable) so the next observation sees a current copy
        instead of "edited after archival" and archiving the same bytes again."""
        original = entry.original
        if original is None or copy.flavor_id is None or copy.flavor_id == original.flavor_id \
                or not copy.sha256 or copy.document is None:
            return
        key = original_key(ctx.settings.prefix, entry.entry_id, original.flavor_id,
                           original.file_ext)
        with ctx.step(entry.entry_id, ACTION, "rekey", before={"from": copy.key, "to": key}):
            metadata = {**dict(copy.info.metadata), "flavor-id": original.flavor_id,
                        "sha256": copy.sha256, "restored-from": copy.flavor_id,
                        "ext": original.file_ext}
            info = ctx.archive.copy(copy.key, key, metadata=metadata,
                                    storage_class=copy.info.storage_class)
            if info.size_bytes != copy.info.size_bytes or \
                    info.metadata.get("flavor-id") != original.flavor_id:
                raise IntegrityError(f"copy of {copy.key} to {key} does not match it")
            record = {**copy.document.get("original", {}), "flavor_id": original.flavor_id,
                      "key": key, "sha256": copy.sha256, "ext": original.file_ext,
                      "restored_from": copy.flavor_id}
            manifest.write(ctx.archive, ctx.settings.prefix,
                           manifest.with_current(copy.document, record))
            # The verified copy under the new key holds the same bytes: drop the old key.
            ctx.archive.delete(copy.key)
