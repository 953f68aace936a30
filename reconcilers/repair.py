"""repair: safe tag fixes only — the tags are made to tell the truth, content is never touched.

The fix is re-derived from a fresh read (never from the plan's snapshot alone):

- a copy PROVEN to be of the current original (karchive's own, or adopted) exists but
  archived_to_s3 is missing (an archive killed between upload and tag): the archive reconciler
  runs — it uploads nothing, checks the copy and tags. A copy nobody proved is not tagged here;
- archived_to_s3 but no copy anywhere and no flavors_deleted: the stale tag is removed;
- the content is the placeholder under archived_to_s3 alone (a replace killed before its last
  tag): the replace is finished (thumbnail, flavors_deleted);
- flavors_deleted but the archived video is back (a restore killed before its untag): the
  restore is finished (thumbnail, untag);
- flavors_deleted and a copy but no archived_to_s3: archived_to_s3 is added back.
"""

from __future__ import annotations

from policies.errors import PermanentError
from policies.observed import TAG_ARCHIVED, TAG_REPLACED
from reconcilers import content, ports
from reconcilers.archive import Archive
from reconcilers.base import Context, Needs, Outcome
from reconcilers.replace import Replace
from reconcilers.restore import Restore

ACTION = "repair"


class Repair:
    name = ACTION
    needs = Needs(steps=("approve", "untag_archived", "tag_archived"),
                  kaltura=ports.ENTRY | ports.TAGS, s3=ports.S3_READ | ports.S3_LIST)
    # it finishes what they left half done
    uses: tuple[str, ...] = ("archive", "replace", "restore")

    def run(self, entry_id: str, ctx: Context) -> Outcome:
        entry = ctx.kaltura.entry(entry_id)
        if entry.replacing:
            return content.in_flight(ctx, entry, ACTION)
        tagged, replaced = TAG_ARCHIVED in entry.tags, TAG_REPLACED in entry.tags
        copy = content.find_copy(ctx, entry_id)
        original = entry.original
        placeholder_now = content.is_placeholder(ctx, entry, copy)
        if copy is None:
            # A stale archived_to_s3: no copy and nothing replaced.
            if tagged and not replaced and not self._any_copy(ctx, entry_id):
                with ctx.step(entry_id, ACTION, "untag_archived") as after:
                    after["tags"] = sorted(ctx.kaltura.remove_tags(
                        entry_id, frozenset({TAG_ARCHIVED})))
                return Outcome.done(f"removed stale {TAG_ARCHIVED}")
            raise PermanentError(f"{entry_id}: no archive copy; no safe tag fix")
        if replaced:
            # The archived video is back: finish the restore.
            if content.content_is_copy(entry, copy) and not placeholder_now:
                return Restore().finish(ctx, entry, copy)
            if not tagged:
                with ctx.step(entry_id, ACTION, "tag_archived") as after:
                    after["tags"] = sorted(ctx.kaltura.add_tags(
                        entry_id, frozenset({TAG_ARCHIVED})))
                return Outcome.done(f"added {TAG_ARCHIVED}")
            return Outcome.skipped("tags already tell the truth")
        # The placeholder under archived_to_s3 alone: finish the replace.
        if tagged and placeholder_now and original is not None \
                and original.flavor_id != copy.flavor_id:
            return Replace().finish(ctx, entry, copy)
        # A copy PROVEN to be of the current original (karchive's own, or adopted), only its
        # tag missing: the archive reconciler checks it and tags (no upload). A copy nobody
        # proved never gets the tag from here: the plan verifies or archives it instead.
        if original is not None and copy.flavor_id == original.flavor_id \
                and copy.info.size_bytes == original.size_bytes:
            return Archive().run(entry_id, ctx)
        raise PermanentError(f"{entry_id}: the copy is not proven to hold the current original; "
                             "no safe tag fix (plan again: it is verified or archived instead)")

    def _any_copy(self, ctx: Context, entry_id: str) -> bool:
        folder = f"{ctx.settings.prefix}{entry_id}/original/"
        return next(iter(ctx.archive.list_keys(folder)), None) is not None
