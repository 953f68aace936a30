"""How one catalogue entry is drawn: the spreads, the id scheme, and the records it becomes.

Everything here draws from the one ``random.Random`` that ``build`` passes in, in a fixed order,
so the catalogue is a pure function of its seed. Draws relative to ``now`` (ages, not dates) keep
the content independent of ``now``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TypeVar

from sandbox.catalogue.truth import (
    ARCHIVED_TAG,
    EXEMPT_TAG,
    GB,
    PLACEHOLDER_CONTENT,
    PLACEHOLDER_MS_DURATION,
    PLACEHOLDER_TAG,
    YEAR,
    Generated,
    LegacyKind,
    LegacyObject,
)
from sandbox.kaltura.content import BytesContent, SeededContent
from sandbox.kaltura.records import (
    AttachmentAsset,
    CaptionAsset,
    EntryStatus,
    FlavorAsset,
    FlavorStatus,
    MediaEntry,
    MediaType,
    ThumbAsset,
)

T = TypeVar("T")

_LEGACY_SHARES: tuple[tuple[LegacyKind, float], ...] = (
    (LegacyKind.ARCHIVED, 0.010),
    (LegacyKind.PLACEHOLDER, 0.010),
    (LegacyKind.TAG_WITHOUT_OBJECT, 0.0015),
    (LegacyKind.DELETED_WITHOUT_ARCHIVED, 0.0015),
    (LegacyKind.OBJECT_WITHOUT_TAG, 0.001),
    (LegacyKind.SIZE_MISMATCH, 0.001),
    (LegacyKind.EMPTIED_BY_REPLACE, 0.0005),
    (LegacyKind.EMPTIED_BY_RESTORE, 0.0005),
)

_STATUSES: tuple[tuple[int, float], ...] = (
    (EntryStatus.READY, 0.925),
    (EntryStatus.PENDING, 0.01),
    (EntryStatus.ERROR_CONVERTING, 0.015),
    (EntryStatus.NO_CONTENT, 0.015),
    (EntryStatus.DELETED, 0.02),
    (EntryStatus.PRECONVERT, 0.005),
    (EntryStatus.IMPORT, 0.003),
    (EntryStatus.ERROR_IMPORTING, 0.002),
    (EntryStatus.MODERATE, 0.003),
    (EntryStatus.BLOCKED, 0.002),
)
_MEDIA_TYPES: tuple[tuple[int, float], ...] = (
    (MediaType.VIDEO, 0.85),
    (MediaType.AUDIO, 0.10),
    (MediaType.IMAGE, 0.05),
)
# Category ids and full names ("parent>child"), as Kaltura lists them in an entry's fields.
_CATEGORIES: tuple[tuple[int, str], ...] = tuple(
    enumerate(
        (  # noqa: SIM905
            "Courses>PHY101|Courses>PHY205|Courses>CHM201|Courses>MAT104|Courses>COS126|"
            "Courses>ECO100|Courses>HIS210|Courses>MUS105|Departments>Physics|"
            "Departments>Chemistry|Departments>Mathematics|Departments>Computer Science|"
            "Departments>Economics|Departments>History|Events>Commencement|"
            "Events>Lectures>Public|MediaSpace>site>channels>Research|"
            "MediaSpace>site>channels>Student Life|MediaSpace>site>galleries>Archive|"
            "Library>Special Collections"
        ).split("|"),
        start=101,
    )
)
_TAGS = (
    "lecture",
    "seminar",
    "zoom",
    "kaltura capture",
    "lab",
    "interview",
    "orientation",
    "guest speaker",
    "recital",
    "review session",
)
_FIRST = "abcdefghijklmnoprstvw"
_SURNAMES = (  # noqa: SIM905 (a word list reads better as one string)
    "doe smith chen garcia nguyen patel kim muller rossi silva tanaka okafor dubois novak "
    "larsen cohen ivanova haddad sato obrien"
).split()
_WORDS = (  # noqa: SIM905
    "Introduction Quantum Thermodynamics Kinetics Topology Algorithms Markets Revolutions Harmony "
    "Optics Proteins Networks Symmetry Entropy Archives Fieldwork Methods Review Workshop Panel "
    # Names the wire must escape and encode: an ampersand, non-ASCII letters.
    "Q&A Schrödinger Café Łódź"
).split()
_LANGUAGES = (
    ("English", "en"),
    ("Spanish", "es"),
    ("French", "fr"),
    ("German", "de"),
    ("Chinese", "zh"),
)
_HOW_MANY_TAGS: tuple[tuple[int, float], ...] = ((0, 0.3), (1, 0.4), (2, 0.2), (3, 0.1))
_HOW_MANY_CATEGORIES: tuple[tuple[int, float], ...] = ((0, 0.25), (1, 0.45), (2, 0.2), (3, 0.1))
_RESOLUTIONS = ((1920, 1080), (1280, 720), (640, 360))


# 1,024 two-character chunks of Kaltura's id alphabet: 10 random bits pick one, so an id is four
# table look-ups (``rng.choices`` or base32 per id cost a third of the generation time).
_ID_CHUNKS = tuple(
    a + b
    for a in "abcdefghijklmnopqrstuvwxyz0123456789"
    for b in "0123456789abcdefghijklmnopqrstuvwxyz"
)[:1024]


class Ids:
    """Kaltura-shaped ids (``0_`` + 8 lower-case alphanumerics), unique within the catalogue."""

    __slots__ = ("_rng", "_seen")

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._seen: set[str] = set()

    def __call__(self) -> str:
        chunks = _ID_CHUNKS
        while True:
            x = self._rng.getrandbits(40)
            high, low = chunks[x >> 30] + chunks[(x >> 20) & 1023], chunks[(x >> 10) & 1023]
            new = f"0_{high}{low}{chunks[x & 1023]}"
            if new not in self._seen:
                self._seen.add(new)
                return new


def owner_pool(rng: random.Random, size: int) -> list[str]:
    owners: list[str] = []
    seen: set[str] = set()
    while len(owners) < size:
        base = _one(rng, _FIRST) + _one(rng, _FIRST) + _one(rng, _SURNAMES)
        uid = base if base not in seen else f"{base}{len(owners)}"
        seen.add(uid)
        # Some Kaltura user ids carry no domain (SSO ids, old local accounts).
        owners.append(uid if rng.random() < 0.1 else f"{uid}@example.edu")
    return owners


def legacy_plan(rng: random.Random, n: int) -> dict[int, LegacyKind]:
    """Which entry indexes are in a legacy state: at least one of each kind when n ≥ 100."""
    plan: dict[int, LegacyKind] = {}
    free = list(range(n))
    rng.shuffle(free)
    for kind, share in _LEGACY_SHARES:
        count = round(n * share)
        if n >= 100:
            count = max(count, 2 if kind in (LegacyKind.ARCHIVED, LegacyKind.PLACEHOLDER) else 1)
        for _ in range(min(count, len(free))):
            plan[free.pop()] = kind
    return plan


# The helpers below draw with ``rng.random()`` alone: ``choice``/``sample``/``randrange`` cost
# 1-3 µs each in pure Python, and a 200,000-entry catalogue makes ~10 million draws.


def _one(rng: random.Random, items: Sequence[T]) -> T:
    return items[int(len(items) * rng.random())]


def _few(rng: random.Random, items: Sequence[T], count: int) -> list[T]:
    """``count`` distinct items (count is small next to len(items))."""
    picked: list[T] = []
    while len(picked) < count:
        item = items[int(len(items) * rng.random())]
        if item not in picked:
            picked.append(item)
    return picked


def _pick(rng: random.Random, table: tuple[tuple[int, float], ...]) -> int:
    roll = rng.random()
    for value, share in table:
        roll -= share
        if roll < 0:
            return value
    return table[0][0]


class Entry:
    """Draws one entry and its assets. The order of draws is fixed, so the output is too."""

    __slots__ = ("rng", "ids", "pid", "now", "owners", "max_size", "derived", "legacy_max")

    def __init__(
        self,
        rng: random.Random,
        ids: Ids,
        pid: int,
        now: float,
        owners: list[str],
        max_size: int | None,
        derived: tuple[int, ...],
        legacy_max: int,
    ) -> None:
        self.rng, self.ids, self.pid, self.now = rng, ids, pid, now
        self.owners, self.max_size, self.derived = owners, max_size, derived
        self.legacy_max = legacy_max

    def make(self, legacy: LegacyKind | None, *, force_huge: bool) -> Generated:
        rng = self.rng
        eid = self.ids()
        # More recent entries are more frequent: age = 12 y · u^1.6 puts ~65 % in the last 6 years.
        created = int(self.now - 12 * YEAR * rng.random() ** 1.6 - 3600 * rng.random())
        updated = created + int((self.now - created) * rng.random() ** 3)
        played: int | None = None
        plays = 0
        if rng.random() >= 0.2:
            # Last played between creation and now, skewed towards long ago; plays long-tailed.
            played = created + int((self.now - created) * rng.random() ** 2)
            plays = max(1, int(math.exp(rng.gauss(1.8, 1.7))))
        status = EntryStatus.READY if legacy else _pick(rng, _STATUSES)
        media_type = MediaType.VIDEO if legacy else _pick(rng, _MEDIA_TYPES)
        size = self._size(media_type, legacy, force_huge)
        real = SeededContent(rng.getrandbits(62), size)
        placeheld = legacy in (LegacyKind.PLACEHOLDER, LegacyKind.EMPTIED_BY_RESTORE)
        held = PLACEHOLDER_CONTENT if placeheld else real
        width, height = (
            _RESOLUTIONS[int(3 * rng.random())] if media_type != MediaType.AUDIO else (0, 0)
        )
        ms = self._ms_duration(media_type, held.size, width)
        flavors = self._flavors(eid, status, media_type, held, created, width, height, ms)
        if legacy in EMPTIED:
            # Every flavor deleted (deleted assets are never listed), then the upload failed:
            # Kaltura set the entry NO_CONTENT when its last READY flavor went (reference
            # §11.4). Thumbnails, captions and attachments were not touched. The flavors are
            # drawn all the same, so the entries after this one do not change.
            flavors = ()
        owner = self.owners[int(len(self.owners) * rng.random() ** 2)]
        creator = owner if rng.random() < 0.9 else _one(rng, self.owners)
        categories = _few(rng, _CATEGORIES, _pick(rng, _HOW_MANY_CATEGORIES))
        thumbs, custom = self._thumbs(eid, status, media_type, created, width, height)
        name = f"{_one(rng, _WORDS)} {_one(rng, _WORDS)} {1 + int(39 * rng.random())}"
        entry = MediaEntry(
            id=eid,
            partner_id=self.pid,
            name=name,
            description=f"{name}, recorded {1970 + created // YEAR}.",
            user_id=owner,
            creator_id=creator,
            tags=self._tags(legacy),
            categories=",".join(c[1] for c in categories),
            categories_ids=",".join(str(c[0]) for c in categories),
            status=EntryStatus.NO_CONTENT if legacy in EMPTIED else status,
            moderation_status={EntryStatus.MODERATE: 1, EntryStatus.BLOCKED: 3}.get(status, 6),
            created_at=created,
            updated_at=max(updated, played or 0),
            last_played_at=played,
            plays=plays,
            views=plays + int(plays * rng.random()),
            duration=round(ms / 1000),
            ms_duration=ms,
            media_type=media_type,
            width=width,
            height=height,
            flavor_params_ids=",".join(
                str(f.flavor_params_id) for f in flavors if f.status == FlavorStatus.READY
            ),
            reference_id=f"REF-{int(1e6 * rng.random()):06d}" if rng.random() < 0.3 else "",
            root_entry_id=eid,
        )
        return Generated(
            entry=entry,
            flavors=flavors,
            thumbs=thumbs,
            captions=self._captions(eid, status, media_type, name, created),
            attachments=self._attachments(eid, status, created),
            legacy=legacy,
            legacy_object=self._legacy_object(eid, legacy, real),
            custom_thumb=custom,
        )

    def _size(self, media_type: int, legacy: LegacyKind | None, force_huge: bool) -> int:
        rng = self.rng
        if legacy:
            size = int(rng.uniform(self.legacy_max // 16, self.legacy_max))
            # Never the placeholder's size: the health check "replaced ⇒ sizes differ" holds.
            size += size == PLACEHOLDER_CONTENT.size
        elif force_huge:
            size = int(rng.uniform(10.2, 14.0) * GB)
        elif media_type == MediaType.VIDEO:
            # Median 250 MB, sigma 1.4: about 0.4 % of videos are over 10 GB.
            size = int(math.exp(rng.gauss(19.34, 1.4)))
        elif media_type == MediaType.AUDIO:
            size = int(math.exp(rng.gauss(17.2, 1.2)))
        else:
            size = int(math.exp(rng.gauss(12.8, 1.2)))  # images: median ~360 KB
        size = max(2048, size)
        return size if self.max_size is None else min(size, self.max_size)

    @staticmethod
    def _ms_duration(media_type: int, size: int, width: int) -> int:
        if size == PLACEHOLDER_CONTENT.size:
            return PLACEHOLDER_MS_DURATION
        if media_type == MediaType.IMAGE:
            return 0
        bits_per_second = {1920: 4_000_000, 1280: 2_000_000, 640: 800_000}.get(width, 128_000)
        return max(1000, size * 8 * 1000 // bits_per_second)

    def _flavors(
        self,
        eid: str,
        status: int,
        media_type: int,
        held: SeededContent,
        created: int,
        width: int,
        height: int,
        ms: int,
    ) -> tuple[FlavorAsset, ...]:
        if status == EntryStatus.NO_CONTENT:
            return ()
        source_status, derived_status = _FLAVOR_STATUS.get(
            status, (FlavorStatus.READY, FlavorStatus.READY)
        )
        ext = {MediaType.VIDEO: "mp4", MediaType.AUDIO: "mp3"}.get(media_type, "jpg")
        deleted_at = created if status == EntryStatus.DELETED else None
        specs = [(0, held, width, height, source_status)]
        if media_type != MediaType.IMAGE and derived_status is not None:
            for params_id, ratio in zip(
                self.derived[: 2 + (self.rng.random() < 0.5)], _RATIOS, strict=False
            ):
                derived = SeededContent(self.rng.getrandbits(62), max(1024, int(held.size * ratio)))
                specs.append((params_id, derived, width // 2, height // 2, derived_status))
        return tuple(
            FlavorAsset(
                id=self.ids(),
                entry_id=eid,
                partner_id=self.pid,
                content=content,
                size=(content.size + 1023) // 1024,
                size_in_bytes=content.size,
                tags="source" if params_id == 0 else "mobile,web,mbr",
                file_ext=ext,
                created_at=created,
                updated_at=created,
                deleted_at=deleted_at,
                flavor_params_id=params_id,
                width=w,
                height=h,
                bitrate=content.size * 8 // max(ms, 1),  # kbit/s = bytes·8 / ms
                frame_rate=30.0 if media_type == MediaType.VIDEO else 0.0,
                is_original=params_id == 0,
                is_web=params_id != 0,
                container_format="isom" if ext == "mp4" else ext,
                video_codec_id="avc1" if media_type == MediaType.VIDEO else "",
                status=flavor_status,
            )
            for params_id, content, w, h, flavor_status in specs
        )

    def _thumbs(
        self, eid: str, status: int, media_type: int, created: int, width: int, height: int
    ) -> tuple[tuple[ThumbAsset, ...], bool]:
        if media_type == MediaType.AUDIO or status == EntryStatus.NO_CONTENT:
            return (), False
        custom = media_type == MediaType.VIDEO and self.rng.random() < 0.08
        thumbs = [self._thumb(eid, created, width, height, default=not custom, custom=False)]
        if custom:
            # An owner-uploaded default thumbnail: the one a naive replace would lose.
            thumbs.append(self._thumb(eid, created, width, height, default=True, custom=True))
        return tuple(thumbs), custom

    def _thumb(
        self, eid: str, created: int, width: int, height: int, *, default: bool, custom: bool
    ) -> ThumbAsset:
        content = SeededContent(self.rng.getrandbits(62), int(8_000 + 82_000 * self.rng.random()))
        return ThumbAsset(
            id=self.ids(),
            entry_id=eid,
            partner_id=self.pid,
            content=content,
            size=content.size,  # thumbnails, captions and attachments count bytes in `size`
            size_in_bytes=content.size,
            tags="default_thumb" if default else "",
            file_ext="png" if custom else "jpg",
            created_at=created,
            updated_at=created,
            width=width or 640,
            height=height or 360,
            description="custom thumbnail" if custom else "",
        )

    def _captions(
        self, eid: str, status: int, media_type: int, name: str, created: int
    ) -> tuple[CaptionAsset, ...]:
        if media_type == MediaType.IMAGE or status == EntryStatus.NO_CONTENT:
            return ()
        if self.rng.random() >= 0.15:
            return ()
        languages = _few(self.rng, _LANGUAGES, 1 if self.rng.random() < 0.75 else 2)
        vtt = self.rng.random() < 0.3
        captions = []
        for position, (language, code) in enumerate(languages):
            text = (
                f"WEBVTT\n\n00:00:00.000 --> 00:00:04.000\n{name}\n"
                if vtt
                else f"1\n00:00:00,000 --> 00:00:04,000\n{name}\n\n"
                f"2\n00:00:04,000 --> 00:00:08,000\n[{language}]\n"
            ).encode()
            captions.append(
                CaptionAsset(
                    id=self.ids(),
                    entry_id=eid,
                    partner_id=self.pid,
                    content=BytesContent(text),
                    size=len(text),
                    size_in_bytes=len(text),
                    file_ext="vtt" if vtt else "srt",
                    created_at=created,
                    updated_at=created,
                    language=language,
                    language_code=code,
                    label=language,
                    format="3" if vtt else "1",
                    is_default=position == 0,
                )
            )
        return tuple(captions)

    def _attachments(self, eid: str, status: int, created: int) -> tuple[AttachmentAsset, ...]:
        if status == EntryStatus.NO_CONTENT or self.rng.random() >= 0.05:
            return ()
        content = SeededContent(
            self.rng.getrandbits(62), int(30_000 + 2_970_000 * self.rng.random())
        )
        filename = _one(self.rng, ("slides.pdf", "handout.pdf", "reading-list.pdf"))
        return (
            AttachmentAsset(
                id=self.ids(),
                entry_id=eid,
                partner_id=self.pid,
                content=content,
                size=content.size,
                size_in_bytes=content.size,
                file_ext="pdf",
                created_at=created,
                updated_at=created,
                filename=filename,
                title=filename.removesuffix(".pdf").replace("-", " ").title(),
            ),
        )

    def _tags(self, legacy: LegacyKind | None) -> str:
        rng = self.rng
        tags = _few(rng, _TAGS, _pick(rng, _HOW_MANY_TAGS))
        if rng.random() < 0.02:
            tags.append(EXEMPT_TAG)
        if legacy in _ARCHIVED_TAGGED:
            tags.append(ARCHIVED_TAG)
        if legacy in (LegacyKind.PLACEHOLDER, LegacyKind.DELETED_WITHOUT_ARCHIVED,
                      LegacyKind.EMPTIED_BY_RESTORE):
            tags.append(PLACEHOLDER_TAG)
        # Kaltura's normalised form: lower-case, ", "-joined (reference section 6).
        return ", ".join(tags)

    def _legacy_object(
        self, eid: str, legacy: LegacyKind | None, real: SeededContent
    ) -> LegacyObject | None:
        if legacy not in WITH_OBJECT:
            return None
        storage = "GLACIER" if self.rng.random() < 0.7 else "STANDARD"
        if legacy is LegacyKind.SIZE_MISMATCH:
            # The copy is of an older version: the video was replaced after archival.
            older = SeededContent(self.rng.getrandbits(62), real.size * 3 // 4)
            return LegacyObject(eid, older, storage)
        return LegacyObject(eid, real, storage)


_RATIOS = (0.5, 0.25, 0.12)
_ARCHIVED_TAGGED = (
    LegacyKind.ARCHIVED,
    LegacyKind.PLACEHOLDER,
    LegacyKind.TAG_WITHOUT_OBJECT,
    LegacyKind.SIZE_MISMATCH,
    LegacyKind.EMPTIED_BY_REPLACE,
    LegacyKind.EMPTIED_BY_RESTORE,
)
EMPTIED = (LegacyKind.EMPTIED_BY_REPLACE, LegacyKind.EMPTIED_BY_RESTORE)
WITH_OBJECT = (
    LegacyKind.ARCHIVED,
    LegacyKind.PLACEHOLDER,
    LegacyKind.OBJECT_WITHOUT_TAG,
    LegacyKind.SIZE_MISMATCH,
    *EMPTIED,
)
# Flavor statuses for an entry status: (source, derived); derived None = no derived flavors.
_FLAVOR_STATUS: dict[int, tuple[int, int | None]] = {
    EntryStatus.ERROR_CONVERTING: (FlavorStatus.READY, FlavorStatus.ERROR),
    EntryStatus.DELETED: (FlavorStatus.DELETED, FlavorStatus.DELETED),
    EntryStatus.PRECONVERT: (FlavorStatus.READY, FlavorStatus.CONVERTING),
    EntryStatus.IMPORT: (FlavorStatus.IMPORTING, None),
    EntryStatus.ERROR_IMPORTING: (FlavorStatus.ERROR, None),
}
