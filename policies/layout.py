"""The archive's key layout: where in the bucket each piece of an entry's archive lives.

Shared by the two sides that touch the bucket: the observer's inventory parses listed keys back
into (entry, kind, asset) and the archive reconciler builds the keys it writes. Pure string work,
so both agree by construction.

Two layouts (policy ``storage.layout``):

- ``entry-folder`` (karchive's own)::

      {prefix}{entry_id}/original/{flavor_id}.{ext}   the original flavor's bytes
      {prefix}{entry_id}/manifest.json                the entry's metadata
      {prefix}{entry_id}/thumbs/{asset_id}.{ext}      thumbnails, captions, attachments
      {prefix}{entry_id}/captions/{asset_id}.{ext}
      {prefix}{entry_id}/attachments/{asset_id}.{ext}

  The original's key carries its flavor id, so the listing alone says which flavor was archived.
- ``legacy`` (the Princeton kaltura_archiver): the bare entry id at the bucket root
  (``0_abcd1234``), nothing else. Its flavor id, if any, is only in object metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

ENTRY_FOLDER = "entry-folder"
LEGACY = "legacy"

# Kaltura entry and asset ids: "{partner-shard digit(s)}_{8 lower-case alphanumerics}".
_ID = r"\d+_[a-z0-9]{8}"
ENTRY_ID_RE = re.compile(rf"^{_ID}$")
_FOLDER_RE = re.compile(
    rf"^(?P<entry>{_ID})/(?:(?P<manifest>manifest\.json)"
    rf"|(?P<kind>original|thumbs|captions|attachments)/(?P<asset>[^/.]+)(?:\.(?P<ext>[^/]*))?)$"
)

MANIFEST_NAME = "manifest.json"


class KeyKind(StrEnum):
    """What an archive key holds."""

    ORIGINAL = "original"
    MANIFEST = "manifest"
    THUMB = "thumbs"
    CAPTION = "captions"
    ATTACHMENT = "attachments"


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """A bucket key understood as part of one entry's archive."""

    entry_id: str
    kind: KeyKind
    layout: str  # ENTRY_FOLDER or LEGACY
    asset_id: str | None = None  # the flavor id for an entry-folder original
    ext: str = ""


def _ext(ext: str) -> str:
    return f".{ext.lstrip('.')}" if ext.strip(".") else ""


def entry_folder(prefix: str, entry_id: str) -> str:
    """The folder (with trailing slash) holding one entry's archive."""
    return f"{prefix}{entry_id}/"


def original_key(prefix: str, entry_id: str, flavor_id: str, ext: str) -> str:
    """Key of the original flavor's bytes in the entry-folder layout."""
    return f"{entry_folder(prefix, entry_id)}original/{flavor_id}{_ext(ext)}"


def manifest_key(prefix: str, entry_id: str) -> str:
    return f"{entry_folder(prefix, entry_id)}{MANIFEST_NAME}"


def asset_key(prefix: str, entry_id: str, kind: KeyKind, asset_id: str, ext: str) -> str:
    """Key of a thumbnail, caption or attachment copy."""
    if kind in (KeyKind.ORIGINAL, KeyKind.MANIFEST):
        raise ValueError(f"use original_key / manifest_key for {kind.value}")
    return f"{entry_folder(prefix, entry_id)}{kind.value}/{asset_id}{_ext(ext)}"


def legacy_key(entry_id: str) -> str:
    """Key of a Princeton-tool archive object: the bare entry id at the bucket root."""
    return entry_id


def parse_key(key: str, prefix: str) -> ParsedKey | None:
    """What ``key`` is, or None for a key that belongs to no entry's archive (logs, leases...).

    A bare entry id at the bucket root is a legacy object whatever the prefix; anything under
    ``prefix`` is tried against the entry-folder layout.
    """
    if ENTRY_ID_RE.match(key):
        return ParsedKey(entry_id=key, kind=KeyKind.ORIGINAL, layout=LEGACY)
    if not key.startswith(prefix):
        return None
    found = _FOLDER_RE.match(key[len(prefix):])
    if found is None:
        return None
    entry_id = found["entry"]
    if found["manifest"]:
        return ParsedKey(entry_id=entry_id, kind=KeyKind.MANIFEST, layout=ENTRY_FOLDER)
    return ParsedKey(
        entry_id=entry_id,
        kind=KeyKind(found["kind"]),
        layout=ENTRY_FOLDER,
        asset_id=found["asset"],
        ext=found["ext"] or "",
    )
