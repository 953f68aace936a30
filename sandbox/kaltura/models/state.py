"""The state a backend holds and the small helpers every action needs.

``BackendState`` is the base of ``KalturaBackend``: the entry, asset and user tables with their
indexes (entries by createdAt for bisecting, assets by entry so a batch of 500 entries never scans
every flavor), the clock, the lock, the id generator and the pending time-based jobs. The behaviour
lives in the mixins beside this module (listing, esearch, entries, replacement, assets, uploads,
users, snapshot); each one only reads and writes the tables defined here.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
import string
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.kaltura.models import errors
from sandbox.kaltura.models.errors import KalturaError, entry_not_found
from sandbox.kaltura.records import (
    ENTRY_CHANGES,
    AttachmentAsset,
    CaptionAsset,
    EntryStatus,
    FlavorAsset,
    MediaEntry,
    Partner,
    ThumbAsset,
    UploadToken,
    UploadTokenStatus,
    User,
)

_ID_ALPHABET = string.ascii_lowercase + string.digits

# Kaltura treats a time filter value v with 0 < |v| <= 10 years as relative to now (kTime
# getRelativeTime); 0 stays 0. Reference section 5.
MAX_RELATIVE_TIME = 315360000

TOKEN_RESOURCE = "KalturaUploadedFileTokenResource"
URL_RESOURCE = "KalturaUrlResource"


class Clock:
    """Wall time plus an offset that tests and the admin endpoint move forward."""

    def __init__(self, offset: float = 0.0) -> None:
        self._offset = offset
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    @property
    def offset(self) -> float:
        return self._offset


@dataclass(order=True)
class Job:
    """A time-based state change, done when ``clock.now() >= due`` (moto's state-machine idea)."""

    due: float
    seq: int
    kind: str = field(compare=False)  # "entry" (new content converts) | "flavor" (convert one)
    entry_id: str = field(compare=False)
    flavor_id: str = field(compare=False, default="")


DEFAULT_THUMB_TAG = "default_thumb"


def has_tag(tags: str, tag: str) -> bool:
    """Whether a comma-separated asset tags string holds ``tag`` (spaces around commas allowed)."""
    return tag in (t.strip() for t in tags.split(","))


def relative_time(value: int, now: int) -> int:
    """Apply Kaltura's relative-time rule to a filter value."""
    if value != 0 and abs(value) <= MAX_RELATIVE_TIME:
        return now + value
    return value


def download_path(partner_id: int, kind: str, asset_id: str, ext: str) -> str:
    """Path part of a download URL; handlers prefix the server's base URL."""
    return f"/p/{partner_id}/sp/{partner_id}00/download/{kind}/{asset_id}/a.{ext}"


class BackendState:
    """Tables, indexes, clock and lock of one partner's emulated Kaltura."""

    def __init__(self, partner: Partner | None = None, clock: Clock | None = None) -> None:
        self.partner = partner or Partner()
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self.entries: dict[str, MediaEntry] = {}
        # (createdAt, id) of every entry and the entries in the same order; sorted lazily, so a
        # bulk insert stays O(1) per entry and a list bisects instead of scanning.
        self._created: list[tuple[int, str]] = []
        self._created_entries: list[MediaEntry] = []
        self._created_sorted = True
        # Whole-catalogue search results by filter, with the change stamp they were made at
        # (models/listing.py, ListingMixin._cached_search).
        self.search_cache: OrderedDict[tuple[Any, ...], tuple[tuple[int, int], list[MediaEntry]]]
        self.search_cache = OrderedDict()
        self.flavors: dict[str, FlavorAsset] = {}
        self.thumbs: dict[str, ThumbAsset] = {}
        self.captions: dict[str, CaptionAsset] = {}
        self.attachments: dict[str, AttachmentAsset] = {}
        self.flavors_by_entry: dict[str, list[FlavorAsset]] = {}
        self.thumbs_by_entry: dict[str, list[ThumbAsset]] = {}
        self.captions_by_entry: dict[str, list[CaptionAsset]] = {}
        self.attachments_by_entry: dict[str, list[AttachmentAsset]] = {}
        self.tokens: dict[str, UploadToken] = {}
        self.users: dict[str, User] = {}  # by partner user id, in the order they were made
        self._jobs: list[Job] = []
        self._job_seq = itertools.count()
        self._rng = random.Random()
        self._imports: list[threading.Thread] = []

    # -- time ---------------------------------------------------------------------------------

    def now(self) -> int:
        return int(self.clock.now())

    def schedule(self, delay: float, kind: str, entry_id: str, flavor_id: str = "") -> None:
        job = Job(self.clock.now() + delay, next(self._job_seq), kind, entry_id, flavor_id)
        heapq.heappush(self._jobs, job)

    def tick(self) -> None:
        """Finish every job whose time has come; O(1) when none is due."""
        if not self._jobs:
            return
        with self.lock:
            now = self.clock.now()
            while self._jobs and self._jobs[0].due <= now:
                self._run_job(heapq.heappop(self._jobs))

    # Hooks one mixin calls on another; KalturaBackend's real methods come first in the MRO.

    def _run_job(self, job: Job) -> None:
        raise NotImplementedError  # replacement.py

    def _fail(self, entry: MediaEntry, status: int) -> None:
        raise NotImplementedError  # replacement.py

    def _refresh_flavor_ids(self, entry: MediaEntry) -> None:
        raise NotImplementedError  # replacement.py

    def derived_flavor(self, entry: MediaEntry, source: FlavorAsset, params_id: int, width: int,
                       height: int, share: float) -> FlavorAsset:
        raise NotImplementedError  # replacement.py

    def _drop_entry(self, entry: MediaEntry) -> None:
        raise NotImplementedError  # entries.py

    def ensure_user(self, user_id: str) -> None:
        raise NotImplementedError  # users.py

    def generate_thumb(self, entry: MediaEntry, offset: float = 0.0, *,
                       make_default: bool = False, width: int = 0, height: int = 0) -> ThumbAsset:
        raise NotImplementedError  # assets.py

    def clear_default_thumb(self, entry: MediaEntry) -> None:
        raise NotImplementedError  # assets.py

    # -- ids ----------------------------------------------------------------------------------

    def new_id(self) -> str:
        """A Kaltura-looking id (``0_`` + 8 lower-case alphanumerics), unique across all tables."""
        while True:
            candidate = "0_" + "".join(self._rng.choices(_ID_ALPHABET, k=8))
            if not any(
                candidate in table
                for table in (self.entries, self.flavors, self.thumbs, self.captions,
                              self.attachments, self.tokens)
            ):
                return candidate

    # -- tables -------------------------------------------------------------------------------

    def _index_entry(self, entry: MediaEntry) -> None:
        ENTRY_CHANGES[0] += 1  # cached searches (listing.py) must see the new entry
        self.entries[entry.id] = entry
        key = (entry.created_at, entry.id)
        if self._created and key < self._created[-1]:
            self._created_sorted = False
        self._created.append(key)
        self._created_entries.append(entry)

    def _sort_created(self) -> None:
        if not self._created_sorted:
            keys = self._created
            order = sorted(range(len(keys)), key=keys.__getitem__)
            self._created = [keys[i] for i in order]
            self._created_entries = [self._created_entries[i] for i in order]
            self._created_sorted = True

    def created_range(self, low: int | None, high: int | None) -> list[MediaEntry]:
        """Entries with low <= createdAt <= high in (createdAt, id) order, by bisection."""
        self._sort_created()
        index = self._created
        start = 0 if low is None else bisect.bisect_left(index, (low, ""))
        end = len(index) if high is None else bisect.bisect_right(index, (high, "\uffff"))
        return self._created_entries[start:end]

    def add_asset(self, asset: Any) -> None:
        table, by_entry = self._tables_for(asset)
        table[asset.id] = asset
        by_entry.setdefault(asset.entry_id, []).append(asset)

    def move_asset(self, asset: Any, entry_id: str) -> None:
        _, by_entry = self._tables_for(asset)
        siblings = by_entry.get(asset.entry_id, [])
        if asset in siblings:
            siblings.remove(asset)
        asset.entry_id = entry_id
        by_entry.setdefault(entry_id, []).append(asset)

    def _tables_for(self, asset: Any) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        if isinstance(asset, FlavorAsset):
            return self.flavors, self.flavors_by_entry  # type: ignore[return-value]
        if isinstance(asset, ThumbAsset):
            return self.thumbs, self.thumbs_by_entry  # type: ignore[return-value]
        if isinstance(asset, CaptionAsset):
            return self.captions, self.captions_by_entry  # type: ignore[return-value]
        return self.attachments, self.attachments_by_entry  # type: ignore[return-value]

    def insert(
        self,
        entry: MediaEntry,
        flavors: Iterable[FlavorAsset] = (),
        thumbs: Iterable[ThumbAsset] = (),
        captions: Iterable[CaptionAsset] = (),
        attachments: Iterable[AttachmentAsset] = (),
    ) -> None:
        """Bulk load with no API semantics (the catalogue generator's 200,000 entries)."""
        with self.lock:
            self._index_entry(entry)
            for asset in itertools.chain(flavors, thumbs, captions, attachments):
                self.add_asset(asset)
            if not entry.thumbnail_url:
                for thumb in self.thumbs_by_entry.get(entry.id, ()):
                    if has_tag(thumb.tags, DEFAULT_THUMB_TAG):
                        entry.thumbnail_url = download_path(entry.partner_id, "thumb", thumb.id,
                                                            thumb.file_ext)

    # -- look-ups -----------------------------------------------------------------------------

    def get_entry(self, entry_id: str) -> MediaEntry:
        """Any status (deleted and temp entries included): for tests and the catalogue."""
        entry = self.entries.get(entry_id)
        if entry is None:
            raise entry_not_found(entry_id)
        return entry

    def all_entries(self) -> list[MediaEntry]:
        return list(self.entries.values())

    def live_entry(self, entry_id: str) -> MediaEntry:
        """An entry the API can see: unknown and deleted ones are ENTRY_ID_NOT_FOUND."""
        entry = self.entries.get(entry_id)
        if entry is None or entry.status == EntryStatus.DELETED:
            raise entry_not_found(entry_id)
        return entry

    def live_assets(self, by_entry: Mapping[str, list[Any]], entry_id: str) -> list[Any]:
        return [a for a in by_entry.get(entry_id, ()) if a.status != 3]

    def usable_token(self, resource: Mapping[str, Any]) -> UploadToken:
        """The FULL_UPLOAD token a KalturaUploadedFileTokenResource names."""
        token = self.tokens.get(str(resource.get("token", "")))
        if token is None:
            raise errors.token_not_found()
        if token.status != UploadTokenStatus.FULL_UPLOAD:
            raise errors.token_invalid_for_entry()
        return token

    def take_token(self, resource: Mapping[str, Any]) -> bytes:
        """Use the token's bytes: the token becomes CLOSED, as a real one does once used."""
        token = self.usable_token(resource)
        token.status = UploadTokenStatus.CLOSED
        token.updated_at = self.now()
        return bytes(token.data)

    def require(self, table: Mapping[str, Any], asset_id: str, error: KalturaError) -> Any:
        asset = table.get(asset_id)
        if asset is None or asset.status == 3:  # 3 is DELETED in every asset status enum
            raise error
        return asset
