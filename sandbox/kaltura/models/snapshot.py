"""Snapshot of a backend as JSON-able data, so a demo survives a restart.

Seeded content is stored as its seed and size (a 10 GB video costs a few bytes), in-memory content
as base64. Pending conversions are kept with their due times; URL imports still in flight cannot
be resumed and are restored as failed imports, which is what a client would see from a real
partner whose import job died.
"""

from __future__ import annotations

import base64
import dataclasses
import heapq
from typing import Any

from sandbox.kaltura.content import BytesContent, Content, SeededContent
from sandbox.kaltura.models.state import BackendState, Job
from sandbox.kaltura.records import (
    AttachmentAsset,
    CaptionAsset,
    EntryStatus,
    FlavorAsset,
    MediaEntry,
    Partner,
    ThumbAsset,
    UploadToken,
    User,
)

FORMAT_VERSION = 1
_ASSET_TYPES: dict[str, type[Any]] = {
    "flavors": FlavorAsset, "thumbs": ThumbAsset, "captions": CaptionAsset,
    "attachments": AttachmentAsset,
}


def _content_out(content: Content | None) -> dict[str, Any] | None:
    if content is None:
        return None
    if isinstance(content, SeededContent):
        return {"seed": content.seed, "size": content.size}
    return {"b64": base64.b64encode(content.read(0, content.size)).decode()}


def _content_in(data: dict[str, Any] | None) -> Content | None:
    if data is None:
        return None
    if "seed" in data:
        return SeededContent(int(data["seed"]), int(data["size"]))
    return BytesContent(base64.b64decode(data["b64"]))


def _record_out(record: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fld in dataclasses.fields(record):
        value = getattr(record, fld.name)
        if fld.name == "content":
            out["content"] = _content_out(value)
        elif fld.name == "data":
            out["data"] = base64.b64encode(bytes(value)).decode()
        else:
            out[fld.name] = value
    return out


def _record_in(cls: type[Any], data: dict[str, Any]) -> Any:
    values = dict(data)
    if "content" in values:
        values["content"] = _content_in(values["content"])
    if "data" in values:
        values["data"] = bytearray(base64.b64decode(values["data"]))
    names = {f.name for f in dataclasses.fields(cls)}
    if "size_in_bytes" in names and "size_in_bytes" not in values and values.get("content"):
        # A snapshot from before every asset kind carried sizeInBytes: its content knows.
        values["size_in_bytes"] = values["content"].size
    if isinstance(values.get("version"), str):  # assets' version was a string before
        values["version"] = int(values["version"] or 0)
    return cls(**{k: v for k, v in values.items() if k in names})


class SnapshotMixin(BackendState):
    """snapshot() and from_snapshot()."""

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            partner = dataclasses.asdict(self.partner)
            partner["derived_flavor_params"] = list(self.partner.derived_flavor_params)
            return {
                "format_version": FORMAT_VERSION,
                "partner": partner,
                "clock_offset": self.clock.offset,
                "entries": [_record_out(e) for e in self.entries.values()],
                **{name: [_record_out(a) for a in getattr(self, name).values()]
                   for name in _ASSET_TYPES},
                "tokens": [_record_out(t) for t in self.tokens.values()],
                "users": [_record_out(u) for u in self.users.values()],
                "jobs": [dataclasses.asdict(j) for j in sorted(self._jobs)],
            }

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> Any:
        from sandbox.kaltura.models.state import Clock

        partner_data = dict(data["partner"])
        partner_data["derived_flavor_params"] = tuple(partner_data["derived_flavor_params"])
        names = {f.name for f in dataclasses.fields(Partner)}
        partner = Partner(**{k: v for k, v in partner_data.items() if k in names})
        backend = cls(partner, Clock(float(data.get("clock_offset", 0.0))))
        for raw in data["entries"]:
            entry = _record_in(MediaEntry, raw)
            backend._index_entry(entry)
        for name, record_type in _ASSET_TYPES.items():
            for raw in data.get(name, ()):
                backend.add_asset(_record_in(record_type, raw))
        for raw in data.get("tokens", ()):
            token = _record_in(UploadToken, raw)
            backend.tokens[token.id] = token
        for raw in data.get("users", ()):
            user = _record_in(User, raw)
            backend.users[user.id] = user
        if "users" not in data:  # a snapshot from before users: the entries' owners exist
            for entry in backend.entries.values():
                backend.ensure_user(entry.user_id)
                backend.ensure_user(entry.creator_id)
        for raw in data.get("jobs", ()):
            backend._jobs.append(Job(float(raw["due"]), next(backend._job_seq), raw["kind"],
                                     raw["entry_id"], raw["flavor_id"]))
        heapq.heapify(backend._jobs)
        for entry in list(backend.entries.values()):
            if entry.status == EntryStatus.IMPORT:  # the fetch thread did not survive
                backend._fail(entry, EntryStatus.ERROR_IMPORTING)
        return backend
