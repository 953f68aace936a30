"""Side assets (thumbnails, captions, attachments): copying one into the archive, with proof.

Archive and purge share this. A copy is the bytes Kaltura serves for the asset, downloaded whole
(a body cut short of its Content-Length raises: ``SourcePort.fetch``), stored beside the original,
and recorded in the manifest with the SHA-256 and size of exactly those bytes — so purge can
check the stored file against what was downloaded before anything is deleted, and export can
check what it writes against the manifest.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import Any

from policies.errors import IntegrityError
from policies.layout import KeyKind, asset_key
from reconcilers.base import Context
from reconcilers.ports import AssetRef

SHA256 = "sha256"


def key_of(ctx: Context, entry_id: str, asset: AssetRef) -> str:
    return asset_key(ctx.settings.prefix, entry_id, KeyKind(asset.kind.value), asset.asset_id,
                     asset.ext)


def content_type(ext: str) -> str:
    return {
        "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "srt": "text/plain",
        "vtt": "text/vtt", "pdf": "application/pdf", "json": "application/json",
    }.get(ext.lower(), "application/octet-stream")


def copy_asset(ctx: Context, entry_id: str, asset: AssetRef, *, read_back: bool
               ) -> tuple[AssetRef, str]:
    """Download ``asset``, store it, and (``read_back``) read the stored file again and compare.
    Returns the ref carrying the stored size and sha256, and its key."""
    key = key_of(ctx, entry_id, asset)
    data = ctx.source.fetch(ctx.kaltura.asset_url(asset))
    sha = hashlib.sha256(data).hexdigest()
    ctx.archive.put_bytes(key, data, content_type=content_type(asset.ext))
    if read_back:
        stored = ctx.archive.get_bytes(key)
        if len(stored) != len(data) or hashlib.sha256(stored).hexdigest() != sha:
            raise IntegrityError(f"{key} does not hold the {len(data)} bytes just downloaded "
                                 f"(sha256 {sha}); nothing was deleted")
    return with_sha(asset, sha, len(data)), key


def with_sha(asset: AssetRef, sha: str, size: int) -> AssetRef:
    extra = tuple((k, v) for k, v in asset.extra if k != SHA256) + ((SHA256, sha),)
    return dataclasses.replace(asset, size_bytes=size, extra=extra)


def recorded(asset: AssetRef, previous: Mapping[str, Any] | None) -> AssetRef:
    """``asset`` with the sha256 and size the manifest recorded for it when it was copied."""
    for kind in ("thumbnails", "captions", "attachments"):
        for item in (previous or {}).get(kind) or []:
            if item.get("id") == asset.asset_id and item.get(SHA256):
                return with_sha(asset, str(item[SHA256]), int(item.get("size_bytes") or 0))
    return asset
