"""The archive manifest: ``{prefix}{entry_id}/manifest.json``, the entry's record in the bucket.

Written by the archive reconciler before the original's upload completes (so the copy's SHA-256
is recorded before the copy exists) and again once the side assets are copied; read by replace
and restore (the checksum, the default thumbnail to put back). It keeps every original ever
archived for the entry under ``originals`` keyed by flavor id, so re-archiving a video edited
after archival never drops the record of the older copy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from policies.errors import NotFound
from policies.layout import manifest_key
from reconcilers.ports import ArchivePort, AssetRef, EntryDetails

FORMAT_VERSION = 1


def read(archive: ArchivePort, prefix: str, entry_id: str) -> dict[str, Any] | None:
    try:
        raw = archive.get_bytes(manifest_key(prefix, entry_id))
    except NotFound:
        return None
    try:
        document = json.loads(raw)
    except ValueError:
        return None  # a damaged manifest is rebuilt by the next archive
    return document if isinstance(document, dict) else None


def build(
    previous: Mapping[str, Any] | None,
    entry: EntryDetails,
    original: Mapping[str, Any],
    assets: tuple[AssetRef, ...] | None,
    asset_keys: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The manifest for ``entry`` with ``original`` (flavor_id, key, size_bytes, sha256, ext,
    archived_at) as the current copy, earlier originals kept, and the side assets."""
    originals = dict((previous or {}).get("originals") or {})
    originals[str(original["flavor_id"])] = dict(original)
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "entry_id": entry.entry_id,
        "partner_id": entry.partner_id,
        "name": entry.name,
        "description": entry.description,
        "owner": entry.user_id,
        "creator": entry.creator_id,
        "tags": sorted(entry.tags),
        "categories": entry.categories,
        "category_ids": entry.category_ids,
        "reference_id": entry.reference_id,
        "media_type": entry.media_type,
        "duration": entry.duration,
        "created_at": entry.created_at,
        "updated_at": entry.updated_at,
        "last_played_at": entry.last_played_at,
        "plays": entry.plays,
        "flavors": [
            {"id": f.flavor_id, "flavor_params_id": f.flavor_params_id,
             "is_original": f.is_original, "size_bytes": f.size_bytes, "ext": f.file_ext}
            for f in entry.flavors
        ],
        "original": dict(original),
        "sha256": original.get("sha256"),
        "originals": originals,
    }
    if assets is None:
        for kind in ("thumbnails", "captions", "attachments"):
            document[kind] = list((previous or {}).get(kind) or [])
        return document
    keys = asset_keys or {}
    by_kind: dict[str, list[dict[str, Any]]] = {"thumbs": [], "captions": [], "attachments": []}
    for asset in assets:
        by_kind[asset.kind.value].append({
            "id": asset.asset_id, "ext": asset.ext, "size_bytes": asset.size_bytes,
            "default": asset.is_default, "label": asset.label, **dict(asset.extra),
            "key": keys.get(asset.asset_id),
        })
    document["thumbnails"] = by_kind["thumbs"]
    document["captions"] = by_kind["captions"]
    document["attachments"] = by_kind["attachments"]
    return document


def write(archive: ArchivePort, prefix: str, document: Mapping[str, Any]) -> None:
    data = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True).encode("utf-8")
    archive.put_bytes(manifest_key(prefix, str(document["entry_id"])), data,
                      content_type="application/json")


def with_current(document: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with ``record`` as its current original (kept in ``originals`` too)."""
    updated = dict(document)
    originals = dict(updated.get("originals") or {})
    originals[str(record["flavor_id"])] = dict(record)
    updated.update(original=dict(record), sha256=record.get("sha256"), originals=originals)
    return updated


def recorded_sha256(document: Mapping[str, Any] | None, flavor_id: str) -> str | None:
    """The checksum recorded for the copy of ``flavor_id``, if any."""
    if not document:
        return None
    found = (document.get("originals") or {}).get(flavor_id) or {}
    return found.get("sha256") or None


def default_thumb_key(document: Mapping[str, Any] | None) -> str | None:
    """The archived copy of the entry's default thumbnail (the real one, not a placeholder's)."""
    for thumb in (document or {}).get("thumbnails") or []:
        if thumb.get("default") and thumb.get("key"):
            return str(thumb["key"])
    return None
