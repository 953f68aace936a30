"""archive: stream the original flavor into S3, verify it, then tag the entry archived_to_s3.

Steps (journalled): ``upload`` (the original, write-once, SHA-256 computed while streaming, the
manifest written with that checksum before the upload completes), ``assets`` (thumbnails,
captions, attachments beside it, and the manifest again listing them), ``verify`` (HEAD the copy:
size and flavor id; re-read the entry's original from Kaltura: same id, same size), ``tag``.

Preconditions, read fresh: the entry is READY with a READY original, no replacement in flight,
and it is not a placeholder (tag flavors_deleted). The placeholder's own bytes are never archived
as an entry's content: a stream whose checksum is the placeholder's is refused before the upload
completes (an interrupted replace is finished by repair instead).

Idempotent: a copy already at the key with this flavor id and size is not uploaded again; a
checksum recorded nowhere (killed between completion and manifest on a run older than this
order) is recomputed by streaming the flavor without uploading it.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime

from policies.durations import format_size
from policies.errors import IntegrityError, PermanentError
from policies.layout import legacy_key, original_key
from policies.observed import TAG_ARCHIVED, TAG_REPLACED, FlavorFacts
from reconcilers import assets, manifest
from reconcilers.base import Context, Outcome
from reconcilers.ports import AssetRef, EntryDetails, ObjectInfo

READY = 2
ACTION = "archive"
_HASH_CHUNK = 8 << 20


def copy_key(ctx: Context, entry_id: str, original: FlavorFacts) -> str:
    if ctx.settings.layout == "legacy":
        return legacy_key(entry_id)
    return original_key(ctx.settings.prefix, entry_id, original.flavor_id, original.file_ext)


def check_archivable(entry: EntryDetails) -> FlavorFacts:
    """The original to copy, or PermanentError naming why this entry cannot be archived now."""
    if entry.replacing:
        raise PermanentError(f"{entry.entry_id}: a content replacement is in flight")
    if entry.status != READY:
        raise PermanentError(f"{entry.entry_id}: entry status {entry.status} is not READY")
    original = entry.original
    if original is None or original.status != READY:
        raise PermanentError(f"{entry.entry_id}: no READY original flavor to archive")
    return original


def copy_matches(info: ObjectInfo | None, original: FlavorFacts) -> bool:
    """The object at the key is a copy of exactly this flavor (flavor id in metadata, size)."""
    return (
        info is not None
        and info.size_bytes == original.size_bytes
        and info.metadata.get("flavor-id") == original.flavor_id
    )


class Archive:
    name = ACTION

    def run(self, entry_id: str, ctx: Context) -> Outcome:
        entry = ctx.kaltura.entry(entry_id)
        if TAG_REPLACED in entry.tags:
            raise PermanentError(f"{entry_id} is a placeholder (flavors_deleted): not archived")
        original = check_archivable(entry)
        key = copy_key(ctx, entry_id, original)
        previous = manifest.read(ctx.archive, ctx.settings.prefix, entry_id)
        info = ctx.archive.head(key)
        moved = 0
        if copy_matches(info, original):
            sha = manifest.recorded_sha256(previous, original.flavor_id)
            if sha is None:
                sha = self._rehash(ctx, entry_id, original)
        else:
            sha, moved = self._upload(ctx, entry, original, key, previous)
        record = _original_record(entry, original, key, sha)
        self._assets(ctx, entry, record, previous)
        self._verify(ctx, entry_id, original, key)
        if TAG_ARCHIVED not in entry.tags:
            with ctx.step(entry_id, ACTION, "tag", before={"tags": sorted(entry.tags)}) as after:
                after["tags"] = sorted(ctx.kaltura.add_tags(entry_id, frozenset({TAG_ARCHIVED})))
        if moved:
            ctx.metrics.bytes_archived(moved)
        # Named as a flavor: "archived 0_ab12cd34" read as another entry's id.
        how = "copied" if moved else "already in the archive"
        return Outcome.done(f"original flavor {original.flavor_id} "
                            f"({format_size(original.size_bytes)}) {how}", moved)

    # -- steps ---------------------------------------------------------------------------------

    def _upload(
        self, ctx: Context, entry: EntryDetails, original: FlavorFacts, key: str,
        previous: dict | None,
    ) -> tuple[str, int]:
        entry_id = entry.entry_id
        before = {"key": key, "flavor_id": original.flavor_id, "size": original.size_bytes}
        with ctx.step(entry_id, ACTION, "upload", before=before) as after:
            # A killed earlier attempt may have left parts behind: they are never completed.
            ctx.archive.abort_stale_uploads(key, started_before=ctx.started_at)
            url = ctx.kaltura.flavor_url(original.flavor_id)
            metadata = {
                "entry-id": entry_id,
                "partner-id": str(entry.partner_id),
                "flavor-id": original.flavor_id,
                "size-bytes": str(original.size_bytes),
                "ext": original.file_ext,
                "archived-at": _now_iso(),
            }

            def before_complete(sha: str) -> None:
                placeholder = ctx.placeholder
                if placeholder is not None and sha == placeholder.sha256:
                    raise IntegrityError(
                        f"{entry_id}'s content is the placeholder video; not archived "
                        "(finish the interrupted replace with a repair)"
                    )
                # Recorded before the copy becomes visible: a kill after completion keeps it.
                record = _original_record(entry, original, key, sha)
                manifest.write(ctx.archive, ctx.settings.prefix,
                               manifest.build(previous, entry, record, None))
                after["sha256"] = sha

            started = time.monotonic()
            reader = ctx.source.open(url, original.size_bytes)
            try:
                result = ctx.archive.upload_stream(
                    key, reader, original.size_bytes, metadata=metadata,
                    storage_class=ctx.settings.storage_class,
                    part_size=ctx.settings.part_size, before_complete=before_complete,
                )
            finally:
                reader.close()
            copy_duration = getattr(ctx.metrics, "copy_duration", None)
            if copy_duration is not None:
                copy_duration(time.monotonic() - started)
            after.update(sha256=result.sha256, parts=result.parts, etag=result.etag,
                         written_by_us=result.written_by_us)
        return result.sha256, original.size_bytes if result.written_by_us else 0

    def _rehash(self, ctx: Context, entry_id: str, original: FlavorFacts) -> str:
        """The copy exists but its checksum was recorded nowhere: stream the (same) flavor
        again, hashing only."""
        before = {"flavor_id": original.flavor_id}
        with ctx.step(entry_id, ACTION, "rehash", before=before) as after:
            digest = hashlib.sha256()
            reader = ctx.source.open(ctx.kaltura.flavor_url(original.flavor_id),
                                     original.size_bytes)
            try:
                while chunk := reader.read(_HASH_CHUNK):
                    digest.update(chunk)
            finally:
                reader.close()
            after["sha256"] = digest.hexdigest()
        return digest.hexdigest()

    def _assets(
        self, ctx: Context, entry: EntryDetails, record: dict, previous: dict | None
    ) -> None:
        """Thumbnails, captions and attachments beside the original; then the full manifest."""
        from_kaltura = ctx.kaltura.assets(entry.entry_id)
        with ctx.step(entry.entry_id, ACTION, "assets",
                      before={"count": len(from_kaltura)}) as after:
            keys: dict[str, str] = {}
            copied: list[AssetRef] = []
            for asset in from_kaltura:
                key = assets.key_of(ctx, entry.entry_id, asset)
                if ctx.archive.head(key) is None:
                    asset, key = assets.copy_asset(ctx, entry.entry_id, asset, read_back=False)
                else:
                    asset = assets.recorded(asset, previous)
                copied.append(asset)
                keys[asset.asset_id] = key
            manifest.write(ctx.archive, ctx.settings.prefix,
                           manifest.build(previous, entry, record, tuple(copied), keys))
            after["keys"] = len(keys)

    def _verify(self, ctx: Context, entry_id: str, original: FlavorFacts, key: str) -> None:
        with ctx.step(entry_id, ACTION, "verify", before={"key": key}) as after:
            info = ctx.archive.head(key)
            if not copy_matches(info, original):
                raise IntegrityError(f"{key} does not hold flavor {original.flavor_id} of "
                                     f"{original.size_bytes} bytes after the upload")
            now = ctx.kaltura.entry(entry_id).original
            if now is None or (now.flavor_id, now.size_bytes) != (
                original.flavor_id, original.size_bytes
            ):
                raise IntegrityError(f"{entry_id}'s original changed during the copy; "
                                     "it will be archived again")
            after["size"] = original.size_bytes


def _original_record(entry: EntryDetails, original: FlavorFacts, key: str, sha: str) -> dict:
    return {
        "flavor_id": original.flavor_id, "key": key, "size_bytes": original.size_bytes,
        "ext": original.file_ext, "sha256": sha, "archived_at": _now_iso(),
    }


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
