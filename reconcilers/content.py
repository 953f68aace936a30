"""What replace, restore, thaw and repair share: finding the copy, watching a swap, the thumbnail.

``media.updateContent`` is asynchronous (reference/kaltura-api.md §8): the entry keeps its
content until Kaltura swaps in the new one. Both content transitions therefore run in two
visits: the first starts the replacement and returns ``waiting``; later visits look at the entry
(fresh) and either wait again, approve a replacement held for approval, or finish once the swap
is in. Nothing here ever deletes a flavor: Kaltura removes the old assets itself, after the new
content is READY — the old tool's data-loss bug (flavors deleted first) cannot happen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from policies.errors import IntegrityError, NotFound, PermanentError
from policies.layout import (
    ENTRY_FOLDER,
    LEGACY,
    Marks,
    entry_folder,
    legacy_key,
    parse_key,
    placeholder_key,
)
from policies.observed import TAG_ARCHIVED, FlavorFacts
from policies.state import legacy_placeholder
from reconcilers import manifest
from reconcilers.base import Context, Outcome
from reconcilers.ports import EntryDetails, ObjectInfo

READY = 2
REPLACEMENT_FAILED = 4
READY_BUT_NOT_APPROVED = 2


@dataclass(frozen=True, slots=True)
class Copy:
    """The archive copy of an entry: where it is, what HEAD says, what the manifest records, and
    what karchive proved of it (the flavor it holds; the flavors that are its placeholders)."""

    key: str
    info: ObjectInfo
    flavor_id: str | None
    sha256: str | None
    document: dict[str, Any] | None
    placeholders: frozenset[str] = frozenset()

    @property
    def legacy(self) -> bool:
        return "/" not in self.key


def find_copy(ctx: Context, entry_id: str) -> Copy | None:
    """The entry's current copy: the manifest's original, else a legacy bare-id object. A
    bare-id object's flavor and checksum count only as proven: recorded by an adoption for the
    ETag it still has, or written by karchive (its metadata)."""
    prefix = ctx.settings.prefix
    document = manifest.read(ctx.archive, prefix, entry_id)
    marks = Marks()
    for key in ctx.archive.list_keys(entry_folder(prefix, entry_id)):
        parsed = parse_key(key, prefix)
        if parsed is not None:
            marks.add(parsed)
    placeholders = frozenset(marks.placeholders.get(entry_id, ()))
    current = (document or {}).get("original") or {}
    if current.get("key") and current["key"] != legacy_key(entry_id):
        info = ctx.archive.head(str(current["key"]))
        if info is not None:
            return Copy(str(current["key"]), info, current.get("flavor_id"),
                        current.get("sha256"), document, placeholders)
    info = ctx.archive.head(legacy_key(entry_id))
    if info is None:
        return None
    flavor_id, sha = info.metadata.get("flavor-id"), info.metadata.get("sha256")
    adopted = (document or {}).get("originals", {}).get(
        marks.verified.get(entry_id, {}).get(info.etag.strip('"'), "")) or {}
    if adopted.get("key") == info.key and adopted.get("etag") == info.etag.strip('"'):
        flavor_id, sha = adopted.get("flavor_id"), adopted.get("sha256")
    elif flavor_id is not None and current.get("key") == info.key \
            and current.get("flavor_id") == flavor_id:
        sha = sha or current.get("sha256")  # karchive's own legacy-layout copy
    return Copy(info.key, info, flavor_id, sha, document, placeholders)


def require_copy(ctx: Context, entry_id: str, purpose: str) -> Copy:
    """The entry's copy, or PermanentError: nothing to ``purpose`` from."""
    copy = find_copy(ctx, entry_id)
    if copy is None:
        raise PermanentError(f"{entry_id}: no archive copy to {purpose} from")
    return copy


def is_placeholder(ctx: Context, entry: EntryDetails, copy: Copy | None) -> bool:
    """The entry's content is PROVEN to be the placeholder (design.md invariant 6): its
    original is a flavor karchive recorded as its placeholder, or the Princeton tool's tags and
    placeholder size on a bare-id copy (``policies.state.legacy_placeholder``). Never size alone."""
    original = entry.original
    if original is None or copy is None:
        return False
    if original.flavor_id in copy.placeholders:
        return True
    return legacy_placeholder(entry.tags, original, LEGACY if copy.legacy else ENTRY_FOLDER,
                              ctx.settings.legacy_placeholder_size)


def mark_placeholder(ctx: Context, entry_id: str, flavor: FlavorFacts,
                     document: dict[str, Any] | None, action: str) -> None:
    """Record that ``flavor`` is the placeholder karchive swapped in: a marker the listing shows
    (the observer's proof) and, when there is one, the manifest's ``placeholder`` record."""
    key = placeholder_key(ctx.settings.prefix, entry_id, flavor.flavor_id)
    with ctx.step(entry_id, action, "mark_placeholder",
                  before={"flavor_id": flavor.flavor_id, "size": flavor.size_bytes}) as after:
        if document is not None:
            manifest.write(ctx.archive, ctx.settings.prefix, {
                **document, "placeholder": {"flavor_id": flavor.flavor_id,
                                            "size_bytes": flavor.size_bytes}})
        ctx.archive.put_bytes(key, b"", content_type="application/octet-stream")
        after["marker"] = key


def prove_placeholder(ctx: Context, entry: EntryDetails, copy: Copy | None, action: str) -> bool:
    """Whether the entry's content is the placeholder, proven: recorded already, or — for an
    original of the placeholder's exact size under archived_to_s3 (a swap of ours that finished
    before it was recorded) — its bytes hashed from Kaltura equal the placeholder's, and then it
    is recorded. A video that merely has the placeholder's size is not the placeholder."""
    if is_placeholder(ctx, entry, copy):
        return True
    original, placeholder = entry.original, ctx.placeholder
    if original is None or placeholder is None or original.size_bytes != placeholder.size \
            or original.status != READY or TAG_ARCHIVED not in entry.tags:
        return False
    if hash_flavor(ctx, original) != placeholder.sha256:
        return False
    mark_placeholder(ctx, entry.entry_id, original, copy.document if copy else None, action)
    return True


def hash_flavor(ctx: Context, flavor: FlavorFacts) -> str:
    """SHA-256 of a flavor's bytes, streamed from Kaltura (nothing is stored)."""
    digest = hashlib.sha256()
    reader = ctx.source.open(ctx.kaltura.flavor_url(flavor.flavor_id), flavor.size_bytes)
    try:
        while chunk := reader.read(8 << 20):
            digest.update(chunk)
    finally:
        reader.close()
    return digest.hexdigest()


def in_flight(ctx: Context, entry: EntryDetails, action: str) -> Outcome:
    """A replacement is under way: wait for it, approve ours if the partner holds it."""
    if entry.replacement_status == REPLACEMENT_FAILED:
        raise PermanentError(f"{entry.entry_id}: Kaltura's replacement failed; "
                             "cancel it in the KMC (media.cancelReplace), then apply again")
    if entry.replacement_status == READY_BUT_NOT_APPROVED:
        with ctx.step(entry.entry_id, action, "approve"):
            ctx.kaltura.approve_replacement(entry.entry_id)
    return Outcome.waiting(f"Kaltura is replacing {entry.entry_id}'s content",
                           ctx.settings.poll_interval)


def put_back_thumbnail(ctx: Context, entry_id: str, document: dict[str, Any] | None,
                       action: str) -> str | None:
    """Make the archived default thumbnail the entry's default again (bytes from S3)."""
    key = manifest.default_thumb_key(document)
    if key is None:
        return None
    with ctx.step(entry_id, action, "thumbnail", before={"key": key}) as after:
        try:
            data = ctx.archive.get_bytes(key)
        except NotFound:
            after["_result"] = "skipped"
            return None
        thumb_id = ctx.kaltura.set_default_thumb_from_bytes(entry_id, data, key.rsplit("/", 1)[-1])
        after["thumb_id"] = thumb_id
    return thumb_id


def require_placeholder(ctx: Context) -> Any:
    if ctx.placeholder is None:
        raise PermanentError("the policy names no placeholder video; set `placeholder:` to a "
                             "file or URL before replacing content")
    return ctx.placeholder


def content_is_copy(entry: EntryDetails, copy: Copy) -> bool:
    """The entry's original is the archived video again (same size; not the placeholder)."""
    original = entry.original
    return original is not None and original.size_bytes == copy.info.size_bytes


def check_current(entry: EntryDetails, copy: Copy | None) -> FlavorFacts:
    """Invariant 2: the copy matches the CURRENT original (flavor id, size) and has a checksum."""
    original = entry.original
    if original is None or original.status != READY:
        raise IntegrityError(f"{entry.entry_id}: no READY original to compare the copy with")
    if copy is None:
        raise IntegrityError(f"{entry.entry_id}: tagged archived but no copy in the bucket; "
                             "it will be archived again")
    if copy.info.size_bytes != original.size_bytes or copy.flavor_id != original.flavor_id:
        raise IntegrityError(
            f"{entry.entry_id}: the copy ({copy.flavor_id}, {copy.info.size_bytes} bytes) is not "
            f"the current original ({original.flavor_id}, {original.size_bytes} bytes); "
            "archive it again first"
        )
    if not copy.sha256:
        raise IntegrityError(f"{entry.entry_id}: no checksum recorded for {copy.key}")
    return original
