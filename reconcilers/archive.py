"""archive: stream the original flavor into S3, verify it, then tag the entry archived_to_s3.

Steps (journalled): ``upload`` (the original, write-once, SHA-256 computed while streaming, the
manifest written with that checksum before the upload completes), ``assets`` (thumbnails,
captions, attachments beside it, and the manifest again listing them), ``verify`` (HEAD the copy:
size and flavor id; re-read the entry's original from Kaltura: same id, same size), ``tag``.

Preconditions, read fresh: the entry is READY with a READY original, no replacement in flight,
and it is not a placeholder (tag flavors_deleted). The placeholder's own bytes are never archived
as an entry's content: an original of the placeholder's exact size is hashed first, and when its
bytes ARE the placeholder's (a replace killed after the swap) that flavor is recorded as the
placeholder and nothing is archived (repair then finishes the replace); a video that merely has
that size is archived like any other. A stream whose checksum is the placeholder's is refused
before the upload completes all the same.

A bare-id copy another tool left (``reconcilers/adopt.py``) is verified first: proven, it is
adopted (manifest, ``verified`` marker, side assets, tag) with nothing uploaded; not proven, it is
left as it is and the original is archived into karchive's own layout beside it — under
``layout: legacy`` too, whose new copies otherwise go to the bare entry id (with a marker, since
the listing shows no metadata).

Idempotent: a copy already at the key with this flavor id and size is not uploaded again; a
checksum recorded nowhere (killed between completion and manifest on a run older than this
order) is recomputed by streaming the flavor without uploading it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from policies.durations import format_size
from policies.errors import IntegrityError, PermanentError
from policies.layout import legacy_key, original_key, verified_key
from policies.observed import TAG_ARCHIVED, TAG_REPLACED, FlavorFacts
from reconcilers import adopt, assets, content, manifest, ports
from reconcilers.base import Context, Needs, Outcome
from reconcilers.ports import AssetRef, EntryDetails, ObjectInfo

READY = 2
ACTION = "archive"


def copy_key(ctx: Context, entry_id: str, original: FlavorFacts, bare: ObjectInfo | None = None
             ) -> str:
    """Where a new copy of ``original`` goes. ``layout: legacy`` writes the bare entry id (the
    old tool's restore still finds it) unless an object karchive cannot vouch for is there
    (``bare``, not a copy of this flavor): that one is never overwritten, and the new copy goes
    into karchive's own layout beside it."""
    if ctx.settings.layout == "legacy" and (bare is None or copy_matches(bare, original)):
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
    needs = Needs(
        steps=("mark_placeholder", "verify_legacy", "record_adopted", "upload", "rehash",
               "assets", "verify", "tag"),
        kaltura=ports.ENTRY | ports.FLAVOR_URL | ports.ASSETS | ports.TAGS,
        s3=ports.S3_READ | ports.S3_LIST | ports.S3_WRITE | ports.S3_UPLOAD | ports.S3_CHECKSUM,
    )
    uses: tuple[str, ...] = ()

    def run(self, entry_id: str, ctx: Context) -> Outcome:
        entry = ctx.kaltura.entry(entry_id)
        if TAG_REPLACED in entry.tags:
            raise PermanentError(f"{entry_id} is a placeholder (flavors_deleted): not archived")
        original = check_archivable(entry)
        previous = manifest.read(ctx.archive, ctx.settings.prefix, entry_id)
        # Content of the placeholder's size: its bytes tell whether it IS the placeholder (a
        # replace killed after the swap) — then that is recorded, and nothing is archived.
        if ctx.placeholder is not None and original.size_bytes == ctx.placeholder.size \
                and self._placeholder_proven(ctx, entry):
            return Outcome.done(f"{original.flavor_id} is the placeholder video: recorded as "
                                "such, not archived")
        bare = ctx.archive.head(legacy_key(entry_id))
        folder = original_key(ctx.settings.prefix, entry_id, original.flavor_id,
                              original.file_ext)
        # A copy another tool left: proven (no upload), it is adopted; else archived beside it.
        if bare is not None and not copy_matches(bare, original) \
                and not copy_matches(ctx.archive.head(folder), original):
            adopted = self._adopt(ctx, entry, original, bare, previous)
            if adopted is not None:
                return adopted
        key = copy_key(ctx, entry_id, original, bare)
        info = bare if key == legacy_key(entry_id) else ctx.archive.head(key)
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
        if key == legacy_key(entry_id):
            # The listing shows no metadata: a marker says this bare-id copy is ours and current.
            verified = ctx.archive.head(key)
            assert verified is not None  # _verify just read it
            ctx.archive.put_bytes(
                verified_key(ctx.settings.prefix, entry_id, original.flavor_id, verified.etag),
                b"", content_type="application/octet-stream")
        self._tag(ctx, entry)
        if moved:
            ctx.metrics.bytes_archived(moved)
        # Named as a flavor: "archived 0_ab12cd34" read as another entry's id.
        how = "copied" if moved else "already in the archive"
        return Outcome.done(f"original flavor {original.flavor_id} "
                            f"({format_size(original.size_bytes)}) {how}", moved)

    # -- steps ---------------------------------------------------------------------------------

    def _tag(self, ctx: Context, entry: EntryDetails) -> None:
        if TAG_ARCHIVED not in entry.tags:
            with ctx.step(entry.entry_id, ACTION, "tag",
                          before={"tags": sorted(entry.tags)}) as after:
                after["tags"] = sorted(ctx.kaltura.add_tags(entry.entry_id,
                                                            frozenset({TAG_ARCHIVED})))

    def _adopt(self, ctx: Context, entry: EntryDetails, original: FlavorFacts, bare: ObjectInfo,
               previous: dict[str, Any] | None) -> Outcome | None:
        """Prove the bare-id copy holds ``original`` (reconcilers/adopt.py) and record it; None
        when it cannot be proven (the object is left alone and the entry archived beside it)."""
        known = (previous or {}).get("originals", {}).get(original.flavor_id) or {}
        if known.get("key") == bare.key and known.get("etag") == bare.etag.strip('"') \
                and known.get("sha256"):
            sha: str | None = str(known["sha256"])  # proven on an earlier run
            by = str(known.get("verified_by") or "etag")
        else:
            sha = adopt.verify(ctx, entry.entry_id, ctx.kaltura.flavor_url(original.flavor_id),
                               bare, original.size_bytes)
            by = "sha256" if bare.metadata.get("sha256") else "etag"
        if sha is None:
            return None
        document = adopt.record(ctx, entry, original, bare, sha, previous, by)
        self._assets(ctx, entry, dict(document["original"]), document)
        self._tag(ctx, entry)
        return Outcome.done(f"adopted {bare.key}: it holds {original.flavor_id} "
                            f"({original.size_bytes} bytes, {by} checked)")

    def _placeholder_proven(self, ctx: Context, entry: EntryDetails) -> bool:
        copy = content.find_copy(ctx, entry.entry_id)
        return copy is not None and content.prove_placeholder(ctx, entry, copy, ACTION)

    def _upload(
        self, ctx: Context, entry: EntryDetails, original: FlavorFacts, key: str,
        previous: dict[str, Any] | None,
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
            after["sha256"] = sha = content.hash_flavor(ctx, original)
        return sha

    def _assets(
        self, ctx: Context, entry: EntryDetails, record: dict[str, Any],
        previous: dict[str, Any] | None,
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


def _original_record(
    entry: EntryDetails, original: FlavorFacts, key: str, sha: str
) -> dict[str, Any]:
    return {
        "flavor_id": original.flavor_id, "key": key, "size_bytes": original.size_bytes,
        "ext": original.file_ext, "sha256": sha, "archived_at": _now_iso(),
    }


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
