"""purge (plan action ``delete``): archive an entry completely, verify every file, delete it.

The job async-kaltura-backup did, without its ways of losing data (reference/prior-tools.md):
nothing is deleted unless every piece of the entry is in the archive and checked.

Steps (journalled): the original is archived first by the archive reconciler (streamed, its
SHA-256 recorded before the copy completes, HEAD-verified) unless the entry is a placeholder,
whose real video is already archived; ``verify`` re-checks that copy — the current original's
flavor id and size, a recorded checksum, and the checksum of the stored bytes (re-read in full
when the copy is readable; compared with the checksum recorded on the object when it is frozen);
``assets`` downloads every thumbnail, caption and attachment again, stores it, reads it back and
compares size and SHA-256 with what was downloaded (a caption download cut off mid-way fails the
purge and the entry stays in Kaltura); the manifest, with every metadata field and the category
names, is written with a ``purge`` record and read back; then ``delete`` (``baseEntry.delete``,
paced by the session under the ``baseentry.delete`` budget: ACTION_BLOCKED slows it down).

Idempotent: an entry Kaltura no longer has, whose manifest says its purge was verified, is done
(a run killed between the delete and its journal line converges); one without that record is an
error, never "done".
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from policies.errors import IntegrityError, NotFound, PermanentError
from policies.observed import TAG_REPLACED
from reconcilers import assets, content, manifest, ports
from reconcilers.archive import Archive
from reconcilers.base import Context, Needs, Outcome
from reconcilers.ports import AssetRef, EntryDetails

ACTION = "delete"
_HASH_CHUNK = 8 << 20


class Purge:
    name = ACTION
    needs = Needs(
        steps=("approve", "verify", "assets", "delete"),
        kaltura=ports.ENTRY | ports.APPROVE | ports.ASSETS | ports.DELETE_ENTRY,
        s3=ports.S3_READ | ports.S3_LIST | ports.S3_WRITE | ports.S3_CHECKSUM,
    )
    # everything is archived (and verified) before the delete
    uses: tuple[str, ...] = ("archive",)

    def run(self, entry_id: str, ctx: Context) -> Outcome:
        try:
            entry = ctx.kaltura.entry(entry_id)
        except NotFound:
            return self._gone(ctx, entry_id)
        if entry.replacing:
            return content.in_flight(ctx, entry, ACTION)
        placeholder = TAG_REPLACED in entry.tags
        if not placeholder:
            Archive().run(entry_id, ctx)
            entry = ctx.kaltura.entry(entry_id)
        copy = content.find_copy(ctx, entry_id)
        self._verify_original(ctx, entry, copy, placeholder)
        assert copy is not None and copy.document is not None
        document = self._assets(ctx, entry, copy.document, placeholder)
        before = {"key": copy.key, "sha256": copy.sha256, "files": _count(document)}
        with ctx.step(entry_id, ACTION, "delete", before=before) as after:
            ctx.kaltura.delete_entry(entry_id)
            after["deleted"] = True
        self._mark_deleted(ctx, document)
        return Outcome.done(f"deleted after archiving {_count(document)} verified files")

    # -- steps ---------------------------------------------------------------------------------

    def _verify_original(self, ctx: Context, entry: EntryDetails, copy: content.Copy | None,
                         placeholder: bool) -> None:
        with ctx.step(entry.entry_id, ACTION, "verify",
                      before={"key": copy.key if copy else None}) as after:
            if copy is None or copy.document is None:
                raise IntegrityError(f"{entry.entry_id}: no archive copy with a manifest; "
                                     "nothing is deleted")
            if not placeholder:
                content.check_current(entry, copy)
            record = copy.document.get("original") or {}
            if not copy.sha256 or int(record.get("size_bytes") or -1) != copy.info.size_bytes:
                raise IntegrityError(f"{copy.key}: no checksum recorded, or its size differs "
                                     "from the manifest's; archive it again before deleting")
            after["sha256"] = self._stored_sha(ctx, copy)
            if after["sha256"] != copy.sha256:
                raise IntegrityError(f"{copy.key} holds sha256 {after['sha256']}, the download "
                                     f"had {copy.sha256}; nothing is deleted")

    def _stored_sha(self, ctx: Context, copy: content.Copy) -> str | None:
        """The stored bytes' checksum: hashed again when readable, else as recorded on the
        object at upload (S3 checked every part's SHA-256 as it arrived)."""
        if copy.info.readable:
            digest = hashlib.sha256()
            body = ctx.archive.open_read(copy.key)
            try:
                while chunk := body.read(_HASH_CHUNK):
                    digest.update(chunk)
            finally:
                body.close()
            return digest.hexdigest()
        # A frozen object's tag may be unreadable (moto refuses tagging on GLACIER): the
        # manifest's record is then all there is, as for a replace.
        return ctx.archive.get_sha256(copy.key) or copy.sha256

    def _assets(self, ctx: Context, entry: EntryDetails, previous: dict[str, Any],
                placeholder: bool) -> dict[str, Any]:
        """Every side asset copied again and read back; the full manifest written and read back."""
        listed = ctx.kaltura.assets(entry.entry_id)
        with ctx.step(entry.entry_id, ACTION, "assets", before={"count": len(listed)}) as after:
            copied: list[AssetRef] = []
            keys: dict[str, str] = {}
            for asset in listed:
                ref, key = assets.copy_asset(ctx, entry.entry_id, asset, read_back=True)
                copied.append(ref)
                keys[ref.asset_id] = key
            document = manifest.build(previous, entry, previous["original"], tuple(copied), keys)
            if placeholder:
                # The flavors Kaltura lists now are the placeholder's: keep the real ones.
                document["flavors"] = previous.get("flavors", document["flavors"])
            document["purge"] = {"verified_at": _now_iso(), "files": _count(document)}
            manifest.write(ctx.archive, ctx.settings.prefix, document)
            if manifest.read(ctx.archive, ctx.settings.prefix, entry.entry_id) != document:
                raise IntegrityError(f"{entry.entry_id}'s manifest did not read back as written; "
                                     "nothing is deleted")
            after["files"] = _count(document)
        return document

    def _mark_deleted(self, ctx: Context, document: dict[str, Any]) -> None:
        marked = {**document, "deleted_at": _now_iso()}
        manifest.write(ctx.archive, ctx.settings.prefix, marked)

    def _gone(self, ctx: Context, entry_id: str) -> Outcome:
        """Kaltura has no such entry: done if our purge verified it first, an error otherwise."""
        document = manifest.read(ctx.archive, ctx.settings.prefix, entry_id)
        if not document or not document.get("purge"):
            raise PermanentError(f"{entry_id} is not in Kaltura and its archive was never "
                                 "verified complete; check the archive by hand")
        if not document.get("deleted_at"):
            with ctx.step(entry_id, ACTION, "delete", before={"found": "already deleted"}):
                self._mark_deleted(ctx, document)
        return Outcome.skipped("already deleted; the archive is complete")


def _count(document: dict[str, Any]) -> int:
    return 1 + sum(len(document.get(kind) or []) for kind in
                   ("thumbnails", "captions", "attachments"))


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
