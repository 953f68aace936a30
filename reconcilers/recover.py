"""recover: bring back an entry left with no content from the copy it was archived to.

The Princeton tool deleted every flavor before uploading its placeholder, and its restore deleted
the placeholder's before uploading the copy; when the upload failed the entry was left empty —
NO_CONTENT (Kaltura sets it when the last READY flavor goes, reference/kaltura-api.md §11.4), or
READY with no usable original — while its copy sat in the bucket (``policies.state.recoverable``).

Invariant 1 holds at every step: nothing in Kaltura is left to lose, and the copy is only read,
never moved or deleted. Steps (journalled): a frozen copy is thawed first (the plan shows a
``thaw`` item, then ``wait``); ``add_content`` gives Kaltura the copy — ``media.addContent`` for a
NO_CONTENT entry, ``media.updateContent`` for a READY one — by presigned URL or chunked upload;
once Kaltura has converted it, ``verify`` streams the new original back and checks it against
the copy: the SHA-256 karchive recorded, or, for the old tool's copy, its ETag recomputed
(``reconcilers/adopt.py``). That is what "verified" can mean once the original is gone: the
bytes now in Kaltura are exactly the bytes of the copy the entry's tags point to; the copy's own
content cannot be checked against anything older. Proven, the copy is recorded as current (a
``verified`` marker, the manifest) and ``retag`` leaves archived_to_s3 alone on the entry (the
real video is back: flavors_deleted goes). Not proven, nothing is recorded and the entry is
reported: the copy stays as it was.
"""

from __future__ import annotations

from policies.errors import IntegrityError, PermanentError
from policies.observed import TAG_ARCHIVED, TAG_REPLACED
from policies.state import DEAD_FLAVOR
from reconcilers import adopt, content, ports
from reconcilers.base import Context, Needs, Outcome
from reconcilers.ports import EntryDetails
from reconcilers.restore import Restore
from reconcilers.thaw import thaw_first

ACTION = "recover"
READY, NO_CONTENT = 2, 7
CONVERTING = frozenset({0, 1, 4})  # IMPORT, PRECONVERT, PENDING: Kaltura is still at work


class Recover:
    name = ACTION
    needs = Needs(
        steps=("approve", "add_content", "verify", "retag"),
        kaltura=(ports.ENTRY | ports.APPROVE | ports.ADD_CONTENT | ports.UPDATE_CONTENT
                 | ports.FLAVOR_URL | ports.TAGS),
        s3=ports.S3_READ | ports.S3_LIST | ports.S3_WRITE | ports.S3_CHECKSUM,
    )
    # a frozen copy is thawed first; karchive's copy is re-keyed
    uses: tuple[str, ...] = ("thaw", "restore")

    def run(self, entry_id: str, ctx: Context) -> Outcome:
        entry = ctx.kaltura.entry(entry_id)
        if entry.replacing:
            return content.in_flight(ctx, entry, ACTION)
        copy = content.require_copy(ctx, entry_id, "recover")
        original = entry.original
        if entry.status in CONVERTING:
            return Outcome.waiting("Kaltura is converting the recovered video",
                                   ctx.settings.poll_interval)
        if entry.status == READY and original is not None and original.status == READY:
            return self.finish(ctx, entry, copy)
        if entry.status == READY and original is not None and original.status not in DEAD_FLAVOR:
            return Outcome.waiting("Kaltura is converting the recovered video",
                                   ctx.settings.poll_interval)
        if entry.status not in (READY, NO_CONTENT):
            raise PermanentError(f"{entry_id}: entry status {entry.status}; not recovered "
                                 "(the copy is kept)")
        waiting = thaw_first(ctx, entry_id, copy, "recovery")
        if waiting is not None:
            return waiting
        self._add_content(ctx, entry, copy)
        return Outcome.waiting("recovery started", ctx.settings.poll_interval)

    def _add_content(self, ctx: Context, entry: EntryDetails, copy: content.Copy) -> None:
        entry_id = entry.entry_id
        empty = entry.status == NO_CONTENT
        before = {"key": copy.key, "size": copy.info.size_bytes, "via": ctx.settings.restore_via,
                  "call": "media.addContent" if empty else "media.updateContent"}
        with ctx.step(entry_id, ACTION, "add_content", before=before):
            if ctx.settings.restore_via == "upload":
                body = ctx.archive.open_read(copy.key)
                name = copy.key.rsplit("/", 1)[-1]
                try:
                    if empty:
                        ctx.kaltura.add_content_from_upload(entry_id, body, copy.info.size_bytes,
                                                            name)
                    else:
                        ctx.kaltura.update_content_from_upload(entry_id, body,
                                                               copy.info.size_bytes, name)
                finally:
                    body.close()
                return
            url = ctx.archive.presign_get(copy.key, ctx.settings.presign_expiry)
            if empty:
                ctx.kaltura.add_content_from_url(entry_id, url)
            else:
                ctx.kaltura.update_content_from_url(entry_id, url)

    def finish(self, ctx: Context, entry: EntryDetails, copy: content.Copy) -> Outcome:
        """The content is back and converted: prove it is the copy's bytes, record, retag."""
        original = entry.original
        assert original is not None
        entry_id = entry.entry_id
        if original.size_bytes != copy.info.size_bytes:
            raise IntegrityError(f"{entry_id}: the recovered original has {original.size_bytes} "
                                 f"bytes, the copy {copy.info.size_bytes}; the copy is kept")
        url = ctx.kaltura.flavor_url(original.flavor_id)
        if copy.sha256:
            with ctx.step(entry_id, ACTION, "verify", before={"key": copy.key}) as after:
                after["sha256"] = sha = content.hash_flavor(ctx, original)
                proven = sha == copy.sha256
                after["_result"] = "ok" if proven else "mismatch"
        else:
            found = adopt.verify(ctx, entry_id, url, copy.info, original.size_bytes, ACTION,
                                 "verify")
            proven, sha = found is not None, found or ""
        if not proven:
            raise IntegrityError(f"{entry_id}: the recovered content does not match the copy "
                                 f"{copy.key}; nothing recorded, the copy is kept")
        if copy.legacy and copy.flavor_id != original.flavor_id:
            adopt.record(ctx, entry, original, copy.info, sha, copy.document, "etag")
        else:
            Restore().rekey(ctx, entry, copy)
        with ctx.step(entry_id, ACTION, "retag", before={"tags": sorted(entry.tags)}) as after:
            tags = entry.tags
            if TAG_ARCHIVED not in tags:
                tags = ctx.kaltura.add_tags(entry_id, frozenset({TAG_ARCHIVED}))
            if TAG_REPLACED in tags:
                tags = ctx.kaltura.remove_tags(entry_id, frozenset({TAG_REPLACED}))
            after["tags"] = sorted(tags)
        ctx.metrics.bytes_restored(original.size_bytes)
        return Outcome.done(f"recovered from {copy.key} ({original.size_bytes} bytes, verified)",
                            original.size_bytes)
