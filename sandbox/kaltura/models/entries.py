"""Entry actions: media.add / get / update / delete, baseEntry get / delete, and plays.

Updates change only the fields sent (``name__null`` clears one), normalise tags the way the
server does (reference section 6), and give the entry a new updatedAt. A read-only or insert-only
property sent with a value other than the current one is refused with
PROPERTY_VALIDATION_NOT_UPDATABLE, as kaltura/server KalturaObject::validateForUpdate does; an
unchanged value passes, and a property the emulator does not model is ignored.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from sandbox.kaltura.models.errors import not_updatable
from sandbox.kaltura.models.state import BackendState
from sandbox.kaltura.records import EntryStatus, FlavorStatus, MediaEntry

# Read-only / insert-only properties of KalturaBaseEntry, KalturaPlayableEntry and
# KalturaMediaEntry (the @readonly / @insertonly markers in KalturaClient's Core.py).
READ_ONLY = frozenset({
    "id", "partnerId", "status", "moderationStatus", "createdAt", "updatedAt", "downloadUrl",
    "thumbnailUrl", "replacingEntryId", "replacedEntryId", "replacementStatus", "rootEntryId",
    "plays", "views", "lastPlayedAt", "width", "height", "duration", "dataUrl", "flavorParamsIds",
})
INSERT_ONLY = frozenset({"creatorId", "mediaType"})

_FIELDS = {f.name: f for f in dataclasses.fields(MediaEntry)}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def normalise_tags(tags: str) -> str:
    """Split on commas, trim, lower-case, drop tags under 2 characters, de-duplicate, join."""
    seen: dict[str, None] = {}
    for tag in tags.split(","):
        tag = tag.strip().lower()
        if len(tag) >= 2:
            seen.setdefault(tag, None)
    return ", ".join(seen)


def coerce(value: Any, current: Any, annotation: str) -> Any:
    """A wire string to the type of the record field."""
    if "int" in annotation and "str" not in annotation:
        return int(float(value))
    if "bool" in annotation:
        return str(value).lower() in ("1", "true")
    if "float" in annotation:
        return float(value)
    return str(value)


def _null_value(name: str) -> Any:
    fld = _FIELDS[name]
    if "None" in str(fld.type):
        return None
    if fld.default is not dataclasses.MISSING:
        return fld.default
    return ""


class EntriesMixin(BackendState):
    """Entry CRUD and plays."""

    def get_media(self, entry_id: str) -> MediaEntry:
        return self.live_entry(entry_id)

    def add_media(self, fields: Mapping[str, Any], user_id: str = "") -> MediaEntry:
        """media.add: a new entry with no content yet (status 7 NO_CONTENT)."""
        with self.lock:
            now = self.now()
            entry = MediaEntry(id=self.new_id(), partner_id=self.partner.id, created_at=now,
                               updated_at=now, status=EntryStatus.NO_CONTENT)
            self._apply_fields(entry, fields, inserting=True)
            entry.user_id = entry.user_id or user_id
            entry.creator_id = entry.creator_id or entry.user_id
            entry.root_entry_id = entry.id
            self._index_entry(entry)
            self._ensure_owners(entry)
            return entry

    def update_media(self, entry_id: str, fields: Mapping[str, Any]) -> MediaEntry:
        with self.lock:
            entry = self.live_entry(entry_id)
            self._apply_fields(entry, fields, inserting=False)
            self._ensure_owners(entry)
            entry.updated_at = max(self.now(), entry.updated_at + 1)
            return entry

    def _ensure_owners(self, entry: MediaEntry) -> None:
        """The users the entry names exist (Kaltura makes the kuser: see users.py)."""
        self.ensure_user(entry.user_id)
        self.ensure_user(entry.creator_id)

    def _apply_fields(self, entry: MediaEntry, fields: Mapping[str, Any], *,
                      inserting: bool) -> None:
        changes: dict[str, Any] = {}
        for key, raw in fields.items():
            if key == "objectType" or isinstance(raw, Mapping):
                continue
            clear = key.endswith("__null")
            prop = key[: -len("__null")] if clear else key
            name = snake(prop)
            if name not in _FIELDS or name == "object_type":
                continue  # a property the emulator does not model: ignored
            current = getattr(entry, name)
            value = _null_value(name) if clear else coerce(raw, current, str(_FIELDS[name].type))
            if name == "tags" and isinstance(value, str):
                value = normalise_tags(value)
            if value != current and (prop in READ_ONLY or (prop in INSERT_ONLY and not inserting)):
                raise not_updatable("KalturaMediaEntry", prop)
            changes[name] = value
        for name, value in changes.items():
            setattr(entry, name, value)

    def delete_media(self, entry_id: str) -> None:
        """Status 3 and every asset deleted; a replacement in progress goes with it."""
        with self.lock:
            entry = self.live_entry(entry_id)
            if entry.replacing_entry_id and entry.replacing_entry_id in self.entries:
                self._drop_entry(self.entries[entry.replacing_entry_id])
            self._drop_entry(entry)

    def _drop_entry(self, entry: MediaEntry) -> None:
        now = self.now()
        entry.status = EntryStatus.DELETED
        entry.updated_at = now
        entry.replacing_entry_id = None
        for by_entry in (self.flavors_by_entry, self.thumbs_by_entry, self.captions_by_entry,
                         self.attachments_by_entry):
            for asset in by_entry.get(entry.id, ()):
                asset.status = FlavorStatus.DELETED  # 3 = DELETED in every asset status enum
                asset.updated_at = now
                if hasattr(asset, "deleted_at"):
                    asset.deleted_at = now

    def record_play(self, entry_id: str) -> MediaEntry:
        """A viewer played the entry: plays and views + 1, lastPlayedAt = now."""
        with self.lock:
            entry = self.live_entry(entry_id)
            entry.plays += 1
            entry.views += 1
            entry.last_played_at = self.now()
            return entry
