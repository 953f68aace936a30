"""What replace, restore, thaw and repair share: finding the copy, watching a swap, the thumbnail.

``media.updateContent`` is asynchronous (reference/kaltura-api.md §8): the entry keeps its
content until Kaltura swaps in the new one. Both content transitions therefore run in two
visits: the first starts the replacement and returns ``waiting``; later visits look at the entry
(fresh) and either wait again, approve a replacement held for approval, or finish once the swap
is in. Nothing here ever deletes a flavor: Kaltura removes the old assets itself, after the new
content is READY — the old tool's data-loss bug (flavors deleted first) cannot happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from policies.errors import IntegrityError, NotFound, PermanentError
from policies.layout import legacy_key
from policies.observed import FlavorFacts
from reconcilers import manifest
from reconcilers.base import Context, Outcome
from reconcilers.ports import EntryDetails, ObjectInfo

READY = 2
REPLACEMENT_FAILED = 4
READY_BUT_NOT_APPROVED = 2


@dataclass(frozen=True, slots=True)
class Copy:
    """The archive copy of an entry: where it is, what HEAD says, what the manifest records."""

    key: str
    info: ObjectInfo
    flavor_id: str | None
    sha256: str | None
    document: dict[str, Any] | None


def find_copy(ctx: Context, entry_id: str) -> Copy | None:
    """The entry's current copy: the manifest's original, else a legacy bare-id object."""
    document = manifest.read(ctx.archive, ctx.settings.prefix, entry_id)
    current = (document or {}).get("original") or {}
    if current.get("key"):
        info = ctx.archive.head(str(current["key"]))
        if info is not None:
            return Copy(str(current["key"]), info, current.get("flavor_id"),
                        current.get("sha256"), document)
    info = ctx.archive.head(legacy_key(entry_id))
    if info is not None:
        return Copy(info.key, info, info.metadata.get("flavor-id"),
                    info.metadata.get("sha256"), document)
    return None


def is_placeholder(ctx: Context, flavor: FlavorFacts | None) -> bool:
    return (
        flavor is not None
        and ctx.placeholder is not None
        and flavor.size_bytes == ctx.placeholder.size
    )


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
    if copy.info.size_bytes != original.size_bytes or (
        copy.flavor_id is not None and copy.flavor_id != original.flavor_id
    ):
        raise IntegrityError(
            f"{entry.entry_id}: the copy ({copy.flavor_id}, {copy.info.size_bytes} bytes) is not "
            f"the current original ({original.flavor_id}, {original.size_bytes} bytes); "
            "archive it again first"
        )
    if not copy.sha256:
        raise IntegrityError(f"{entry.entry_id}: no checksum recorded for {copy.key}")
    return original
