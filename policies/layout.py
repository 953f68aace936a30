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
  Two kinds of zero-byte marker sit beside it, so that the listing alone (no GET per entry)
  also says what karchive proved::

      {prefix}{entry_id}/verified/{flavor_id}.{etag}  the bare-id copy whose ETag is {etag}
                                                      holds flavor {flavor_id}'s bytes (checked
                                                      by recomputing that ETag from Kaltura)
      {prefix}{entry_id}/placeholder/{flavor_id}      flavor {flavor_id} is the placeholder
                                                      karchive swapped in
      {prefix}{entry_id}/notice/{sent}-{due}.{digest} the owner's notice of what {digest} names
                                                      (``policies.notices``) was accepted by the
                                                      SMTP server at {sent}, announcing {due}
                                                      (unix seconds)

  A marker binds a fact to the ids it names: a new flavor or a rewritten object matches none.
- ``legacy`` (the Princeton kaltura_archiver): the bare entry id at the bucket root
  (``0_abcd1234``), nothing else. Its flavor id, if any, is only in object metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum

from policies.observed import ArchiveFacts, NoticeMark

ENTRY_FOLDER = "entry-folder"
LEGACY = "legacy"

# Kaltura entry and asset ids: "{partner-shard digit(s)}_{8 lower-case alphanumerics}".
_ID = r"\d+_[a-z0-9]{8}"
ENTRY_ID_RE = re.compile(rf"^{_ID}$")
_FOLDER_RE = re.compile(
    rf"^(?P<entry>{_ID})/(?:(?P<manifest>manifest\.json)"
    rf"|(?P<kind>original|thumbs|captions|attachments|verified|placeholder|notice)/(?P<asset>[^/.]+)(?:\.(?P<ext>[^/]*))?)$"
)

MANIFEST_NAME = "manifest.json"


class KeyKind(StrEnum):
    """What an archive key holds."""

    ORIGINAL = "original"
    MANIFEST = "manifest"
    THUMB = "thumbs"
    CAPTION = "captions"
    ATTACHMENT = "attachments"
    VERIFIED = "verified"  # marker: a bare-id copy proven to hold a flavor's bytes
    PLACEHOLDER = "placeholder"  # marker: a flavor that is the placeholder karchive swapped in
    NOTICE = "notice"  # marker: the owner's notice of a swap or purge was accepted for sending


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
    if kind not in (KeyKind.THUMB, KeyKind.CAPTION, KeyKind.ATTACHMENT):
        raise ValueError(f"{kind.value} is not a side asset")
    return f"{entry_folder(prefix, entry_id)}{kind.value}/{asset_id}{_ext(ext)}"


def verified_key(prefix: str, entry_id: str, flavor_id: str, etag: str) -> str:
    """Marker: the bare-id copy with ETag ``etag`` was proven to hold ``flavor_id``'s bytes."""
    return f"{entry_folder(prefix, entry_id)}verified/{flavor_id}.{etag.strip(chr(34))}"


def placeholder_key(prefix: str, entry_id: str, flavor_id: str) -> str:
    """Marker: ``flavor_id`` is the placeholder video karchive put in place of the content."""
    return f"{entry_folder(prefix, entry_id)}placeholder/{flavor_id}"


def notice_key(prefix: str, mark: NoticeMark) -> str:
    """Marker: the notice ``mark`` describes was accepted by the SMTP server."""
    return f"{entry_folder(prefix, mark.entry_id)}notice/{mark.sent_at}-{mark.due_at}.{mark.digest}"


_NOTICE_NAME_RE = re.compile(r"^(\d{1,12})-(\d{1,12})$")
_DIGEST_RE = re.compile(r"^[0-9a-f]{12}$")


def notice_mark(parsed: ParsedKey) -> NoticeMark | None:
    """The notice a ``notice`` marker records; None for a name karchive did not write."""
    found = _NOTICE_NAME_RE.match(parsed.asset_id or "")
    if parsed.kind is not KeyKind.NOTICE or found is None or not _DIGEST_RE.match(parsed.ext):
        return None
    return NoticeMark(parsed.entry_id, int(found[1]), int(found[2]), parsed.ext)


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


@dataclass(slots=True)
class Marks:
    """The markers a listing showed, per entry (collected while the listing is read)."""

    verified: dict[str, dict[str, str]] = field(default_factory=dict)  # entry -> etag -> flavor
    placeholders: dict[str, set[str]] = field(default_factory=dict)  # entry -> flavor ids
    notices: dict[str, list[NoticeMark]] = field(default_factory=dict)  # entry -> notices

    def add(self, parsed: ParsedKey) -> bool:
        """Keep ``parsed`` if it is a marker; whether it was one."""
        if parsed.kind is KeyKind.VERIFIED and parsed.asset_id:
            self.verified.setdefault(parsed.entry_id, {})[parsed.ext] = parsed.asset_id
            return True
        if parsed.kind is KeyKind.PLACEHOLDER and parsed.asset_id:
            self.placeholders.setdefault(parsed.entry_id, set()).add(parsed.asset_id)
            return True
        if parsed.kind is KeyKind.NOTICE:
            # A name karchive did not write is still a marker's place, never content: skipped.
            mark = notice_mark(parsed)
            if mark is not None:
                self.notices.setdefault(parsed.entry_id, []).append(mark)
            return True
        return False

    def applied(self, entry_id: str, facts: ArchiveFacts) -> ArchiveFacts:
        """``facts`` with what the markers prove: the flavor a bare-id copy was verified to hold
        (only while the object keeps the ETag it was verified with) and the placeholder flavors."""
        flavor_id = facts.flavor_id
        if facts.layout == LEGACY and flavor_id is None:
            flavor_id = self.verified.get(entry_id, {}).get(facts.etag.strip('"'))
        placeholders = frozenset(self.placeholders.get(entry_id, ()))
        if flavor_id == facts.flavor_id and placeholders == facts.placeholder_flavor_ids:
            return facts
        return replace(facts, flavor_id=flavor_id, placeholder_flavor_ids=placeholders)
