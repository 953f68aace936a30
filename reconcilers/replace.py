"""replace: swap an archived entry's content for the placeholder video, keeping its thumbnail.

Preconditions, read fresh (invariant 2): tag archived_to_s3; the copy in the bucket is of the
CURRENT original — same flavor id, same size (a video edited after archival, even to the same
size, has a new flavor id and is refused: the plan archives it again) — and its SHA-256 is
recorded (a copy the old tool left is first verified by its ETag and adopted, or archived again
beside it, whatever ``storage.layout`` says).
Then ``media.updateContent`` with the placeholder (an upload token of its bytes, or a
URL resource when the policy gives a URL), intent journalled first. Kaltura swaps later; the entry
keeps its real content until then (``content.in_flight``). Once the placeholder is in (proven by
its bytes: size alone never tells), its flavor id is recorded as the placeholder (a marker the
listing shows, the manifest, the journal), the real default thumbnail goes back (from the
archive), and the entry is tagged flavors_deleted.
"""

from __future__ import annotations

import io

from policies.errors import IntegrityError
from policies.observed import TAG_ARCHIVED, TAG_REPLACED
from reconcilers import content, ports
from reconcilers.archive import Archive
from reconcilers.base import Context, Needs, Outcome
from reconcilers.ports import EntryDetails

ACTION = "replace"


class Replace:
    name = ACTION
    needs = Needs(
        steps=("replace", "approve", "mark_placeholder", "thumbnail", "tag_replaced"),
        kaltura=(ports.ENTRY | ports.UPDATE_CONTENT | ports.APPROVE | ports.FLAVOR_URL
                 | ports.THUMB_FROM_BYTES | ports.TAGS),
        s3=ports.S3_READ | ports.S3_LIST | ports.S3_WRITE,
    )
    # a copy nobody proved is archived first
    uses: tuple[str, ...] = ("archive",)

    def run(self, entry_id: str, ctx: Context) -> Outcome:
        placeholder = content.require_placeholder(ctx)
        entry = ctx.kaltura.entry(entry_id)
        if entry.replacing:
            return content.in_flight(ctx, entry, ACTION)
        copy = content.find_copy(ctx, entry_id)
        if TAG_REPLACED in entry.tags and content.is_placeholder(ctx, entry, copy):
            return Outcome.skipped("already a placeholder")
        if TAG_ARCHIVED not in entry.tags:
            raise IntegrityError(f"{entry_id} is not tagged {TAG_ARCHIVED}: archive it first")
        # The swap already happened (an earlier visit, or a run killed before its last tag):
        # proven by the record, or by the content's bytes being the placeholder's.
        if (copy is not None and entry.original is not None
                and entry.original.flavor_id != copy.flavor_id
                and content.prove_placeholder(ctx, entry, copy, ACTION)):
            return self.finish(ctx, entry, content.find_copy(ctx, entry_id) or copy)
        # A copy nobody proved (the old tool's, under either layout: no flavor id or no
        # checksum): archive first — adopted if its ETag proves it, else copied again beside
        # it — then replace. A proven copy of an OLDER flavor is refused below: the plan
        # archives the edited video first (invariant 2).
        if (copy is not None and TAG_REPLACED not in entry.tags
                and (copy.flavor_id is None or not copy.sha256)):
            Archive().run(entry_id, ctx)
            entry, copy = ctx.kaltura.entry(entry_id), content.find_copy(ctx, entry_id)
        original = content.check_current(entry, copy)
        assert copy is not None
        before = {"flavor_id": original.flavor_id, "size": original.size_bytes,
                  "sha256": copy.sha256, "key": copy.key}
        with ctx.step(entry_id, ACTION, "replace", before=before) as after:
            if placeholder.url:
                started = ctx.kaltura.update_content_from_url(entry_id, placeholder.url)
            else:
                started = ctx.kaltura.update_content_from_upload(
                    entry_id, io.BytesIO(placeholder.data), placeholder.size, placeholder.name)
            after["replacing_entry_id"] = started.replacing_entry_id
            after["replacement_status"] = started.replacement_status
        return Outcome.waiting("placeholder upload started", ctx.settings.poll_interval)

    def finish(self, ctx: Context, entry: EntryDetails, copy: content.Copy) -> Outcome:
        """The placeholder is in: record its flavor id as the placeholder (marker, manifest,
        journal), put the real thumbnail back, then tag flavors_deleted."""
        original = entry.original
        if original is not None and original.flavor_id not in copy.placeholders:
            content.mark_placeholder(ctx, entry.entry_id, original, copy.document, ACTION)
        content.put_back_thumbnail(ctx, entry.entry_id, copy.document, ACTION)
        with ctx.step(entry.entry_id, ACTION, "tag_replaced",
                      before={"tags": sorted(entry.tags)}) as after:
            tags = ctx.kaltura.add_tags(entry.entry_id, frozenset({TAG_ARCHIVED, TAG_REPLACED}))
            after["tags"] = sorted(tags)
        return Outcome.done("content replaced by the placeholder")
