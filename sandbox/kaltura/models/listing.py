"""media.list / baseEntry.list: filters, Kaltura's default filters, ordering, pager, the 10,000 cap.

The filter arrives as the wire sent it (a dict of strings, reference section 5). Candidates come
from the cheapest index the filter allows (ids, or a createdAt range bisected from the sorted
index); the remaining conditions are compiled into predicates once and applied list by list, so a
500-entry page over 200,000 entries stays well under the half second the benchmark allows.
``totalCount`` is always the true count of matches, as Kaltura reports it even past the cap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sandbox.kaltura.models.errors import query_exceeded
from sandbox.kaltura.models.state import BackendState, relative_time
from sandbox.kaltura.records import EntryStatus, ListResponse, MediaEntry

MAX_IN_VALUES = 500  # `*In` lists are silently cut here
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 30
MAX_MATCHES = 10000  # Sphinx max_matches: no row at or past this position is ever returned

Predicate = Callable[[MediaEntry], bool]

# orderBy field -> sort key; unknown fields are ignored, as Kaltura does.
_ORDER_KEYS: dict[str, Callable[[MediaEntry], Any]] = {
    "createdat": lambda e: (e.created_at, e.id),
    "updatedat": lambda e: e.updated_at,
    "name": lambda e: e.name.lower(),
    "plays": lambda e: e.plays,
    "views": lambda e: e.views,
    "lastplayedat": lambda e: e.last_played_at or 0,
    "duration": lambda e: e.duration,
    "msduration": lambda e: e.ms_duration,
    "mediatype": lambda e: e.media_type,
    "partnersortvalue": lambda e: 0,
    "recent": lambda e: e.created_at,
}


def split_in(value: Any) -> list[str]:
    """A comma-separated `*In` value, trimmed, cut at 500 values."""
    if value is None:
        return []
    return [v.strip() for v in str(value).split(",") if v.strip()][:MAX_IN_VALUES]


def parse_pager(pager: Mapping[str, Any] | None) -> tuple[int, int]:
    """(pageSize, pageIndex): size defaults to 30 and is clamped to [0, 500]; index is 1-based."""
    pager = pager or {}
    try:
        size = int(pager.get("pageSize", DEFAULT_PAGE_SIZE))
    except (TypeError, ValueError):
        size = DEFAULT_PAGE_SIZE
    try:
        index = int(pager.get("pageIndex", 1))
    except (TypeError, ValueError):
        index = 1
    return max(0, min(MAX_PAGE_SIZE, size)), max(1, index)


def page(items: Sequence[Any], pager: Mapping[str, Any] | None) -> list[Any]:
    size, index = parse_pager(pager)
    offset = (index - 1) * size
    return list(items[offset : offset + size])


@lru_cache(maxsize=65536)
def tag_words(tags: str) -> frozenset[str]:
    """Searchable words of a tags string: each whole tag, and each word of a multi-word tag."""
    words: set[str] = set()
    for tag in tags.lower().split(","):
        tag = tag.strip()
        if tag:
            words.add(tag)
            words.update(tag.split())
    return frozenset(words)


def term_matches(term: str, words: frozenset[str]) -> bool:
    """Whole-word, case-insensitive; a trailing `*` makes the term a prefix."""
    term = term.strip().lower()
    if not term:
        return False
    if term.endswith("*"):
        prefix = term[:-1]
        return any(w.startswith(prefix) for w in words)
    return term in words


def _ints(value: Any) -> set[int]:
    return {int(v) for v in split_in(value)}


def _time_predicates(f: Mapping[str, Any], now: int) -> list[Predicate]:
    preds: list[Predicate] = []

    def bound(name: str) -> int | None:
        raw = f.get(name)
        if raw in (None, ""):
            return None
        return relative_time(int(raw), now)

    if (v := bound("updatedAtGreaterThanOrEqual")) is not None:
        preds.append(lambda e, v=v: e.updated_at >= v)
    if (v := bound("updatedAtLessThanOrEqual")) is not None:
        preds.append(lambda e, v=v: e.updated_at <= v)
    if (v := bound("lastPlayedAtGreaterThanOrEqual")) is not None:
        preds.append(lambda e, v=v: e.last_played_at is not None and e.last_played_at >= v)
    if (v := bound("lastPlayedAtLessThanOrEqual")) is not None:
        preds.append(lambda e, v=v: e.last_played_at is not None and e.last_played_at <= v)
    if (v := bound("lastPlayedAtLessThanOrEqualOrNull")) is not None:
        preds.append(lambda e, v=v: e.last_played_at is None or e.last_played_at <= v)
    return preds


def _tag_predicates(f: Mapping[str, Any]) -> list[Predicate]:
    preds: list[Predicate] = []
    if f.get("tagsLike"):
        term = str(f["tagsLike"])
        preds.append(lambda e, t=term: term_matches(t, tag_words(e.tags)))
    if f.get("tagsMultiLikeOr"):
        terms = split_in(f["tagsMultiLikeOr"])
        preds.append(lambda e, ts=terms: any(term_matches(t, tag_words(e.tags)) for t in ts))
    if f.get("tagsMultiLikeAnd"):
        terms = split_in(f["tagsMultiLikeAnd"])
        preds.append(lambda e, ts=terms: all(term_matches(t, tag_words(e.tags)) for t in ts))
    if f.get("tagsNameMultiLikeOr"):
        terms = split_in(f["tagsNameMultiLikeOr"])
        preds.append(lambda e, ts=terms: any(
            term_matches(t, tag_words(e.tags) | tag_words(e.name.replace(" ", ","))) for t in ts))
    return preds


def _category_ids(entry: MediaEntry) -> set[str]:
    return {c.strip() for c in entry.categories_ids.split(",") if c.strip()}


def _scalar_predicates(f: Mapping[str, Any], hidden_ok: bool) -> list[Predicate]:
    preds: list[Predicate] = []
    if f.get("idNotIn"):
        ids = set(split_in(f["idNotIn"]))
        preds.append(lambda e: e.id not in ids)
    if f.get("userIdEqual") is not None and f.get("userIdEqual") != "":
        user = str(f["userIdEqual"])
        preds.append(lambda e: e.user_id == user)
    if f.get("userIdIn"):
        users = set(split_in(f["userIdIn"]))
        preds.append(lambda e: e.user_id in users)
    if f.get("creatorIdEqual"):
        creator = str(f["creatorIdEqual"])
        preds.append(lambda e: e.creator_id == creator)
    if f.get("referenceIdEqual"):
        ref = str(f["referenceIdEqual"])
        preds.append(lambda e: e.reference_id == ref)
    if f.get("mediaTypeEqual"):
        mt = int(f["mediaTypeEqual"])
        preds.append(lambda e: e.media_type == mt)
    if f.get("mediaTypeIn"):
        mts = _ints(f["mediaTypeIn"])
        preds.append(lambda e: e.media_type in mts)
    for name, op in (("durationLessThan", "lt"), ("durationLessThanOrEqual", "le"),
                     ("durationGreaterThan", "gt"), ("durationGreaterThanOrEqual", "ge")):
        if f.get(name) not in (None, ""):
            v = int(f[name])
            preds.append({
                "lt": lambda e, v=v: e.duration < v, "le": lambda e, v=v: e.duration <= v,
                "gt": lambda e, v=v: e.duration > v, "ge": lambda e, v=v: e.duration >= v,
            }[op])
    if f.get("categoriesIdsMatchOr"):
        cats = set(split_in(f["categoriesIdsMatchOr"]))
        preds.append(lambda e: bool(_category_ids(e) & cats))
    if f.get("categoriesIdsMatchAnd"):
        cats = set(split_in(f["categoriesIdsMatchAnd"]))
        preds.append(lambda e: cats <= _category_ids(e))
    if f.get("categoriesIdsNotContains"):
        cats = set(split_in(f["categoriesIdsNotContains"]))
        preds.append(lambda e: not (_category_ids(e) & cats))
    if not hidden_ok:
        # Replacement temp entries (-1) and recycled entries (-2) are hidden from searches.
        preds.append(lambda e: e.display_in_search >= 0)
    return preds


def _status_predicates(f: Mapping[str, Any]) -> list[Predicate]:
    preds: list[Predicate] = []
    given = False
    if f.get("statusEqual") not in (None, ""):
        given = True
        st = int(f["statusEqual"])
        preds.append(lambda e: e.status == st)
    if f.get("statusNotEqual") not in (None, ""):
        given = True
        st2 = int(f["statusNotEqual"])
        preds.append(lambda e: e.status != st2)
    if f.get("statusIn"):
        given = True
        sts = _ints(f["statusIn"])
        preds.append(lambda e: e.status in sts)
    if f.get("statusNotIn"):
        given = True
        nsts = _ints(f["statusNotIn"])
        preds.append(lambda e: e.status not in nsts)
    if not given and f.get("idEqual") in (None, ""):
        # Kaltura's default: only READY entries, unless a status or idEqual is given.
        preds.append(lambda e: e.status == EntryStatus.READY)
    if f.get("moderationStatusEqual") not in (None, ""):
        ms = int(f["moderationStatusEqual"])
        preds.append(lambda e: e.moderation_status == ms)
    elif f.get("moderationStatusIn"):
        mss = _ints(f["moderationStatusIn"])
        preds.append(lambda e: e.moderation_status in mss)
    elif f.get("moderationStatusNotIn"):
        nms = _ints(f["moderationStatusNotIn"])
        preds.append(lambda e: e.moderation_status not in nms)
    else:
        # Default moderation filter: PENDING_MODERATION (1) and REJECTED (3) entries are hidden.
        preds.append(lambda e: e.moderation_status not in (1, 3))
    return preds


class ListingMixin(BackendState):
    """media.list and baseEntry.list."""

    def list_entries(
        self,
        filter: Mapping[str, Any] | None,
        pager: Mapping[str, Any] | None,
        *,
        base: bool = False,
    ) -> ListResponse:
        f = filter or {}
        size, index = parse_pager(pager)
        offset = (index - 1) * size
        if offset >= MAX_MATCHES:
            raise query_exceeded()
        matches = self._match(f)
        matches = self._order(matches, str(f.get("orderBy") or ""))
        end = min(offset + size, MAX_MATCHES)
        objects = matches[offset:end] if offset < end else []
        kind = "KalturaBaseEntryListResponse" if base else "KalturaMediaListResponse"
        return ListResponse(kind, objects, len(matches))

    def _candidates(self, f: Mapping[str, Any]) -> list[MediaEntry]:
        if f.get("idEqual") not in (None, ""):
            entry = self.entries.get(str(f["idEqual"]))
            ids = [entry.id] if entry else []
        elif f.get("idIn"):
            ids = [i for i in dict.fromkeys(split_in(f["idIn"])) if i in self.entries]
        else:
            now = self.now()
            low = f.get("createdAtGreaterThanOrEqual")
            high = f.get("createdAtLessThanOrEqual")
            low_v = relative_time(int(low), now) if low not in (None, "") else None
            high_v = relative_time(int(high), now) if high not in (None, "") else None
            entries = self.entries
            return [entries[i] for _, i in self.created_range(low_v, high_v)]
        found = [self.entries[i] for i in ids]
        return sorted(found, key=lambda e: (e.created_at, e.id))

    def _match(self, f: Mapping[str, Any]) -> list[MediaEntry]:
        now = self.now()
        items = self._candidates(f)
        preds: list[Predicate] = []
        if f.get("idEqual") not in (None, "") or f.get("idIn"):
            # createdAt bounds were not used to pick candidates: apply them as predicates.
            for name, ge in (("createdAtGreaterThanOrEqual", True),
                             ("createdAtLessThanOrEqual", False)):
                if f.get(name) not in (None, ""):
                    v = relative_time(int(f[name]), now)
                    preds.append((lambda e, v=v: e.created_at >= v) if ge
                                 else (lambda e, v=v: e.created_at <= v))
        preds += _status_predicates(f)
        preds += _scalar_predicates(f, hidden_ok=bool(f.get("idIn")))
        preds += _time_predicates(f, now)
        preds += _tag_predicates(f)
        if f.get("categoryAncestorIdIn"):
            preds.append(self._ancestor_predicate(split_in(f["categoryAncestorIdIn"])))
        for pred in preds:
            items = [e for e in items if pred(e)]
        return items

    def _ancestor_predicate(self, ids: list[str]) -> Predicate:
        """Entries in one of the categories or below it. The emulator has no category table: a
        category's full name is learned from the entries that carry it (ids and names align)."""
        wanted = set(ids)
        names: set[str] = set()
        for entry in self.entries.values():
            if not entry.categories_ids:
                continue
            for cid, name in zip(entry.categories_ids.split(","), entry.categories.split(","),
                                 strict=False):
                if cid.strip() in wanted:
                    names.add(name.strip())

        def under(entry: MediaEntry) -> bool:
            if _category_ids(entry) & wanted:
                return True
            return any(n.strip() == a or n.strip().startswith(a + ">")
                       for n in entry.categories.split(",") for a in names)

        return under

    @staticmethod
    def _order(items: list[MediaEntry], order_by: str) -> list[MediaEntry]:
        keys = []
        for part in order_by.split(","):
            part = part.strip()
            if not part:
                continue
            desc = part.startswith("-")
            name = part.lstrip("+-").lower()
            if name in _ORDER_KEYS:
                keys.append((_ORDER_KEYS[name], desc))
        if not keys:
            # No (known) order: unspecified in Kaltura; newest first here, so callers that rely on
            # an order they did not ask for are not rewarded by a lucky createdAt order.
            return items[::-1]
        if len(keys) == 1 and keys[0][0] is _ORDER_KEYS["createdat"]:
            return items[::-1] if keys[0][1] else items  # candidates are already createdAt-sorted
        for key, desc in reversed(keys):  # stable sorts, least significant key first
            items = sorted(items, key=key, reverse=desc)
        return items
