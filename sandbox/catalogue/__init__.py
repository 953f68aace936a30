"""The seeded catalogue: a partner's video library for the emulator, generated, never stored.

The sandbox's Kaltura side starts from this catalogue. It is a pure function of ``(n, seed, now)``:
the same arguments give the same entries, flavors and bytes, so tests, benchmarks and the demo see
one library every time. Only ``random.Random(seed)`` is used (never the global generator), and every
random draw is relative to ``now`` (ages, not dates), so the content of the library, including the
legacy S3 objects, does not depend on ``now`` at all.

What it contains (the spreads later issues plan against):

- createdAt over ~12 years before ``now``, more recent entries more frequent;
- about 20 % never played (lastPlayedAt null, plays 0); the others played between creation and
  ``now``, skewed to long ago; plays with a long tail;
- sizes log-normal from kilobytes to over 10 GB (at least one entry over 10 GB when n ≥ 100);
  bytes are ``SeededContent`` (derived from a seed on demand, so 200,000 entries cost no storage);
- owners from a pool (some user ids without a domain), categories with full names, tags
  (some ``archive_exempt``), statuses (mostly READY), media types, captions, attachments, custom
  default thumbnails;
- a ``KalturaUser`` for every id in the owner pool (so every entry's userId and creatorId exists),
  with names and ``{uid}@example.edu`` addresses; some without an address, some blocked. Users
  come from their own generator derived from the seed (``people.py``): the entries never change
  because of them;
- about 2 % in the states the Princeton kaltura_archiver leaves behind (tags ``archived_to_s3`` and
  ``flavors_deleted``, an S3 object keyed by the bare entry id), and a few broken ones so health
  checks have something to find — among them entries the Princeton tool emptied (every flavor
  deleted, then its upload failed: NO_CONTENT, with the copy in the bucket).
  ``CatalogueSummary`` records which entries are which: the truth tests compare observations
  against.

``build`` yields the records; ``generate`` hands them to ``KalturaBackend.insert`` in bulk (no API
semantics, no per-entry cost beyond the records themselves). The package:

    truth.py   constants, legacy kinds, and the records of what was generated (the summary)
    draw.py    how one entry is drawn: spreads, ids, owners, assets, legacy states
    people.py  the users behind the owner ids
"""

from __future__ import annotations

import gc
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from sandbox.catalogue.draw import (
    WITH_OBJECT,
    Entry,
    Ids,
    legacy_plan,
    owner_pool,
)
from sandbox.catalogue.people import draw_users
from sandbox.catalogue.truth import (
    ARCHIVED_TAG,
    DERIVED_FLAVOR_PARAMS,
    EXEMPT_TAG,
    GB,
    LEGACY_BYTES_BUDGET,
    LEGACY_FLOOR,
    LEGACY_MAX_SIZE,
    MIB,
    PLACEHOLDER_CONTENT,
    PLACEHOLDER_MS_DURATION,
    PLACEHOLDER_TAG,
    YEAR,
    CatalogueSummary,
    Generated,
    LegacyKind,
    LegacyObject,
)
from sandbox.kaltura.records import (
    AttachmentAsset,
    CaptionAsset,
    FlavorAsset,
    MediaEntry,
    ThumbAsset,
    User,
    UserStatus,
)

__all__ = [
    "ARCHIVED_TAG",
    "DERIVED_FLAVOR_PARAMS",
    "EXEMPT_TAG",
    "GB",
    "LEGACY_BYTES_BUDGET",
    "LEGACY_FLOOR",
    "LEGACY_MAX_SIZE",
    "MIB",
    "PLACEHOLDER_CONTENT",
    "PLACEHOLDER_MS_DURATION",
    "PLACEHOLDER_TAG",
    "YEAR",
    "Backend",
    "CatalogueSummary",
    "Generated",
    "LegacyKind",
    "LegacyObject",
    "build",
    "generate",
    "legacy_objects",
    "owners",
]


class Backend(Protocol):
    """What the generator needs of ``KalturaBackend``: its partner id and bulk ``insert``."""

    @property
    def partner(self) -> object: ...

    def insert(
        self,
        entry: MediaEntry,
        flavors: tuple[FlavorAsset, ...] = (),
        thumbs: tuple[ThumbAsset, ...] = (),
        captions: tuple[CaptionAsset, ...] = (),
        attachments: tuple[AttachmentAsset, ...] = (),
    ) -> None: ...

    def insert_user(self, user: User) -> None: ...


def generate(
    backend: Backend, n: int = 2000, seed: int = 1, *, now: float, max_size: int | None = None
) -> CatalogueSummary:
    """Insert a seeded catalogue of ``n`` entries into ``backend``; return what was made.

    ``max_size`` caps every source flavor (the demo uses it so archiving stays quick); the
    10 GB guarantee holds only without it.
    """
    partner_id = int(getattr(backend.partner, "id", 100))
    derived = tuple(getattr(backend.partner, "derived_flavor_params", DERIVED_FLAVOR_PARAMS))
    made: list[Generated] = []
    counters = _Counters()
    items = build(n, seed, now=now, partner_id=partner_id, max_size=max_size, derived=derived)
    # A million new long-lived objects would trigger full collections over and over (quadratic
    # in n); none of them form cycles, so collect once at the end instead.
    was_enabled = gc.isenabled()
    gc.disable()
    first_seen: dict[str, int] = {}
    try:
        for item in items:
            backend.insert(item.entry, item.flavors, item.thumbs, item.captions, item.attachments)
            counters.add(item)
            for uid in (item.entry.user_id, item.entry.creator_id):
                if item.entry.created_at < first_seen.get(uid, item.entry.created_at + 1):
                    first_seen[uid] = item.entry.created_at
            if item.legacy is not None:
                made.append(item)
        users = draw_users(owners(n, seed), first_seen, seed, now, partner_id)
        for user in users:
            backend.insert_user(user)
    finally:
        if was_enabled:
            gc.enable()
    return counters.summary(n, seed, now, made, users)


def legacy_objects(summary: CatalogueSummary) -> tuple[LegacyObject, ...]:
    """The objects the runner uploads to the bucket for the Princeton-state entries."""
    return summary.objects


def build(
    n: int,
    seed: int,
    *,
    now: float,
    partner_id: int = 100,
    max_size: int | None = None,
    derived: tuple[int, ...] = DERIVED_FLAVOR_PARAMS,
) -> Iterator[Generated]:
    """Yield the catalogue's entries one by one (pure: no backend, no I/O)."""
    rng, pool = _start(n, seed)
    ids = Ids(rng)
    plan = legacy_plan(rng, n)
    with_object = sum(kind in WITH_OBJECT for kind in plan.values())
    legacy_max = max(LEGACY_FLOOR, min(LEGACY_MAX_SIZE, LEGACY_BYTES_BUDGET // max(1, with_object)))
    huge_at = rng.randrange(n) if n >= 100 and max_size is None else -1
    drawer = Entry(rng, ids, partner_id, now, pool, max_size, derived, legacy_max)
    for index in range(n):
        yield drawer.make(plan.get(index), force_huge=index == huge_at)


def owners(n: int, seed: int) -> list[str]:
    """The owner ids of the catalogue ``(n, seed)``: the users the sandbox holds."""
    return _start(n, seed)[1]


def _start(n: int, seed: int) -> tuple[random.Random, list[str]]:
    """The entries' generator and its first draws, the owner pool (``build`` goes on from here)."""
    rng = random.Random(seed)
    return rng, owner_pool(rng, max(20, n // 10))


@dataclass(slots=True)
class _Counters:
    by_status: Counter[int] = field(default_factory=Counter)
    by_media_type: Counter[int] = field(default_factory=Counter)
    never_played: int = 0
    over_10gb: list[str] = field(default_factory=list)
    exempt: int = 0
    with_captions: int = 0
    with_attachments: int = 0
    custom_thumbs: list[str] = field(default_factory=list)
    source_bytes: int = 0

    def add(self, item: Generated) -> None:
        entry = item.entry
        self.by_status[entry.status] += 1
        self.by_media_type[entry.media_type] += 1
        self.never_played += entry.last_played_at is None
        self.exempt += EXEMPT_TAG in entry.tags.split(", ")
        self.with_captions += bool(item.captions)
        self.with_attachments += bool(item.attachments)
        if item.custom_thumb:
            self.custom_thumbs.append(entry.id)
        for flavor in item.flavors:
            if flavor.is_original:
                self.source_bytes += flavor.size_in_bytes
                if flavor.size_in_bytes > 10 * GB:
                    self.over_10gb.append(entry.id)

    def summary(self, n: int, seed: int, now: float, made: list[Generated],
                users: list[User]) -> CatalogueSummary:
        legacy: dict[LegacyKind, list[str]] = {}
        for item in made:
            assert item.legacy is not None
            legacy.setdefault(item.legacy, []).append(item.entry.id)
        return CatalogueSummary(
            entries=n,
            seed=seed,
            now=now,
            by_status=dict(self.by_status),
            by_media_type=dict(self.by_media_type),
            never_played=self.never_played,
            over_10gb=len(self.over_10gb),
            over_10gb_ids=tuple(self.over_10gb),
            exempt=self.exempt,
            with_captions=self.with_captions,
            with_attachments=self.with_attachments,
            custom_thumbs=len(self.custom_thumbs),
            custom_thumb_ids=tuple(self.custom_thumbs),
            source_bytes=self.source_bytes,
            legacy={kind: tuple(ids) for kind, ids in legacy.items()},
            objects=tuple(i.legacy_object for i in made if i.legacy_object is not None),
            users=len(users),
            users_without_email=tuple(u.id for u in users if not u.email),
            blocked_users=tuple(u.id for u in users if u.status == UserStatus.BLOCKED),
        )
