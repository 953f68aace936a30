"""media.list / baseEntry.list: filters, Kaltura's default filters, ordering, pager, the 10,000 cap.

The filter arrives as the wire sent it (a dict of strings, reference section 5). Candidates come
from the cheapest index the filter allows (ids, or a createdAt range bisected from the sorted
index); the remaining conditions are compiled into predicates once and applied list by list, so a
500-entry page over 200,000 entries stays well under the half second the benchmark allows. A
wide search's matches are kept until an entry changes, so the pages of a createdAt cursor walk
are cut from one scan by bisection (``ListingMixin._cached_search``). ``totalCount`` is always the
true count of matches, as Kaltura reports it even past the cap.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache, partial
from operator import attrgetter
from typing import Any

from sandbox.kaltura.models.errors import query_exceeded
from sandbox.kaltura.models.state import BackendState, relative_time
from sandbox.kaltura.records import ENTRY_CHANGES, ListResponse, MediaEntry

MAX_IN_VALUES = 500  # `*In` lists are silently cut here
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 30
MAX_MATCHES = 10000  # Sphinx max_matches: no row at or past this position is ever returned
CACHED_SEARCHES = 4  # see ListingMixin._cached_search

_CREATED_BOUNDS = ("createdAtGreaterThanOrEqual", "createdAtLessThanOrEqual")
# What a cursor walk changes from page to page (the boundary second's ids go in idNotIn): left
# out of a cached search's key and applied to its result instead.
_CURSOR_FIELDS = (*_CREATED_BOUNDS, "idNotIn", "orderBy")
_TIME_FIELDS = ("updatedAtGreaterThanOrEqual", "updatedAtLessThanOrEqual",
                "lastPlayedAtGreaterThanOrEqual", "lastPlayedAtLessThanOrEqual",
                "lastPlayedAtLessThanOrEqualOrNull")
_BY_CREATED = attrgetter("created_at", "id")

# orderBy field -> sort key; unknown fields are ignored, as Kaltura does.
_ORDER_KEYS: dict[str, Callable[[MediaEntry], Any]] = {
    "createdat": attrgetter("created_at", "id"),
    "updatedat": attrgetter("updated_at"),
    "name": lambda e: e.name.lower(),
    "plays": attrgetter("plays"),
    "views": attrgetter("views"),
    "lastplayedat": lambda e: e.last_played_at or 0,
    "duration": attrgetter("duration"),
    "msduration": attrgetter("ms_duration"),
    "mediatype": attrgetter("media_type"),
    "recent": attrgetter("created_at"),
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


def _ints(value: Any) -> frozenset[int]:
    return frozenset(int(v) for v in split_in(value))


def _given(f: Mapping[str, Any], name: str) -> bool:
    return f.get(name) not in (None, "")


def _search_key(f: Mapping[str, Any], now: int) -> tuple[Any, ...]:
    """A cached search's key: the filter without what a cursor walk changes page by page."""
    key = tuple(sorted((k, str(v)) for k, v in f.items() if k not in _CURSOR_FIELDS))
    if any(_given(f, name) for name in _TIME_FIELDS):
        key += (("now", str(now)),)  # relative times resolve against the clock
    return key


class Memo(dict[Any, bool]):
    """Predicate results by field value: entries share few distinct tag and category strings, so
    the test runs once per distinct value and the scan itself is a C-level dict lookup."""

    def __init__(self, test: Callable[[Any], bool]) -> None:
        super().__init__()
        self._test = test

    def __missing__(self, key: Any) -> bool:
        value = self[key] = self._test(key)
        return value


class FilterPlan:
    """A filter compiled to one comprehension: conditions are Python expressions over ``e``,
    their constants bound in a namespace, so 200,000 entries are scanned without a call each."""

    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.names: dict[str, Any] = {}

    def add(self, expression: str, **names: Any) -> None:
        self.conditions.append(expression)
        self.names.update(names)

    def bind(self, value: Any) -> str:
        """A fresh name for a constant the expressions use."""
        name = f"C{len(self.names)}"
        self.names[name] = value
        return name

    def memo_of(self, key_expr: str, test: Callable[[Any], bool]) -> str:
        """An expression testing ``key_expr`` once per distinct value (see Memo)."""
        return f"{self.bind(Memo(test))}[{key_expr}]"

    def memo(self, key_expr: str, test: Callable[[Any], bool]) -> None:
        self.add(self.memo_of(key_expr, test))

    def run(self, items: list[MediaEntry]) -> list[MediaEntry]:
        if not self.conditions:
            return items
        code = f"[e for e in items if {' and '.join(self.conditions)}]"
        # Names go in the globals: a comprehension's scope does not see eval's locals.
        scope = {"__builtins__": {}, **self.names, "items": items}
        result: list[MediaEntry] = eval(code, scope)  # only our own expressions reach eval
        return result


def _category_set(ids: str) -> frozenset[str]:
    return frozenset(c.strip() for c in ids.split(",") if c.strip())


def _tags_any(terms: list[str]) -> Callable[[str], bool]:
    return lambda tags: any(term_matches(t, tag_words(tags)) for t in terms)


def _plan_status(plan: FilterPlan, f: Mapping[str, Any]) -> None:
    given = False
    if _given(f, "statusEqual"):
        given = True
        plan.add("e.status == ST_EQ", ST_EQ=int(f["statusEqual"]))
    if _given(f, "statusNotEqual"):
        given = True
        plan.add("e.status != ST_NE", ST_NE=int(f["statusNotEqual"]))
    if _given(f, "statusIn"):
        given = True
        plan.add("e.status in ST_IN", ST_IN=_ints(f["statusIn"]))
    if _given(f, "statusNotIn"):
        given = True
        plan.add("e.status not in ST_NIN", ST_NIN=_ints(f["statusNotIn"]))
    if not given and not _given(f, "idEqual"):
        # Kaltura's default: only READY entries, unless a status or idEqual is given.
        plan.add("e.status == 2")
    elif not given:
        plan.add("e.status != 3")  # deleted entries only appear when a status filter asks
    if _given(f, "moderationStatusEqual"):
        plan.add("e.moderation_status == MS_EQ", MS_EQ=int(f["moderationStatusEqual"]))
    elif _given(f, "moderationStatusIn"):
        plan.add("e.moderation_status in MS_IN", MS_IN=_ints(f["moderationStatusIn"]))
    elif _given(f, "moderationStatusNotIn"):
        plan.add("e.moderation_status not in MS_NIN", MS_NIN=_ints(f["moderationStatusNotIn"]))
    else:
        # Default moderation filter: PENDING_MODERATION (1) and REJECTED (3) entries are hidden.
        plan.add("e.moderation_status not in (1, 3)")


def _plan_fields(plan: FilterPlan, f: Mapping[str, Any]) -> None:
    if _given(f, "idNotIn"):
        plan.add("e.id not in ID_NIN", ID_NIN=frozenset(split_in(f["idNotIn"])))
    if _given(f, "userIdEqual"):
        plan.add("e.user_id == USER", USER=str(f["userIdEqual"]))
    if _given(f, "userIdIn"):
        plan.add("e.user_id in USERS", USERS=frozenset(split_in(f["userIdIn"])))
    if _given(f, "creatorIdEqual"):
        plan.add("e.creator_id == CREATOR", CREATOR=str(f["creatorIdEqual"]))
    if _given(f, "referenceIdEqual"):
        plan.add("e.reference_id == REF", REF=str(f["referenceIdEqual"]))
    if _given(f, "mediaTypeEqual"):
        plan.add("e.media_type == MT", MT=int(f["mediaTypeEqual"]))
    if _given(f, "mediaTypeIn"):
        plan.add("e.media_type in MT_IN", MT_IN=_ints(f["mediaTypeIn"]))
    for name, op, const in (("durationLessThan", "<", "D_LT"),
                            ("durationLessThanOrEqual", "<=", "D_LE"),
                            ("durationGreaterThan", ">", "D_GT"),
                            ("durationGreaterThanOrEqual", ">=", "D_GE")):
        if _given(f, name):
            plan.add(f"e.duration {op} {const}", **{const: int(f[name])})
    if _given(f, "categoriesIdsMatchOr"):
        cats = frozenset(split_in(f["categoriesIdsMatchOr"]))
        plan.memo("e.categories_ids", lambda ids: bool(_category_set(ids) & cats))
    if _given(f, "categoriesIdsMatchAnd"):
        every = frozenset(split_in(f["categoriesIdsMatchAnd"]))
        plan.memo("e.categories_ids", lambda ids: every <= _category_set(ids))
    if _given(f, "categoriesIdsNotContains"):
        none = frozenset(split_in(f["categoriesIdsNotContains"]))
        plan.memo("e.categories_ids", lambda ids: not (_category_set(ids) & none))


def _plan_times(plan: FilterPlan, f: Mapping[str, Any], now: int, *, created: bool) -> None:
    def bound(name: str) -> int | None:
        return relative_time(int(f[name]), now) if _given(f, name) else None

    if created:
        if (v := bound("createdAtGreaterThanOrEqual")) is not None:
            plan.add("e.created_at >= CA_GE", CA_GE=v)
        if (v := bound("createdAtLessThanOrEqual")) is not None:
            plan.add("e.created_at <= CA_LE", CA_LE=v)
    if (v := bound("updatedAtGreaterThanOrEqual")) is not None:
        plan.add("e.updated_at >= UA_GE", UA_GE=v)
    if (v := bound("updatedAtLessThanOrEqual")) is not None:
        plan.add("e.updated_at <= UA_LE", UA_LE=v)
    if (v := bound("lastPlayedAtGreaterThanOrEqual")) is not None:
        plan.add("(e.last_played_at is not None and e.last_played_at >= LP_GE)", LP_GE=v)
    if (v := bound("lastPlayedAtLessThanOrEqual")) is not None:
        plan.add("(e.last_played_at is not None and e.last_played_at <= LP_LE)", LP_LE=v)
    if (v := bound("lastPlayedAtLessThanOrEqualOrNull")) is not None:
        plan.add("(e.last_played_at is None or e.last_played_at <= LP_LEN)", LP_LEN=v)


def _plan_tags(plan: FilterPlan, f: Mapping[str, Any]) -> None:
    if _given(f, "tagsLike"):
        plan.memo("e.tags", _tags_any([str(f["tagsLike"])]))
    if _given(f, "tagsMultiLikeOr"):
        plan.memo("e.tags", _tags_any(split_in(f["tagsMultiLikeOr"])))
    if _given(f, "tagsMultiLikeAnd"):
        terms = split_in(f["tagsMultiLikeAnd"])
        plan.memo("e.tags", lambda tags: all(term_matches(t, tag_words(tags)) for t in terms))
    if _given(f, "tagsNameMultiLikeOr"):
        any_of = _tags_any(split_in(f["tagsNameMultiLikeOr"]))
        plan.memo("(e.tags, e.name)",
                  lambda key: any_of(key[0]) or any_of(key[1].replace(" ", ",")))


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

    def _by_ids(self, f: Mapping[str, Any]) -> list[MediaEntry]:
        """The entries idEqual or idIn names, in (createdAt, id) order."""
        if _given(f, "idEqual"):
            entry = self.entries.get(str(f["idEqual"]))
            found = [entry] if entry else []
        else:
            found = [self.entries[i] for i in dict.fromkeys(split_in(f["idIn"]))
                     if i in self.entries]
        return sorted(found, key=_BY_CREATED)

    def _match(self, f: Mapping[str, Any]) -> list[MediaEntry]:
        """Every entry the filter matches, in (createdAt, id) order."""
        if _given(f, "idEqual") or _given(f, "idIn"):
            return self._compile(f, by_id=True).run(self._by_ids(f))
        now = self.now()
        low, high = (relative_time(int(f[name]), now) if _given(f, name) else None
                     for name in _CREATED_BOUNDS)
        key = _search_key(f, now)
        cached = self._cached_search(key)
        if cached is None:
            candidates = self.created_range(low, high)
            if 2 * len(candidates) < len(self.entries):
                # A narrow search: its own range is cheaper to scan than the catalogue.
                return self._compile(f, by_id=False).run(candidates)
            cached = self._remember_search(key, f)
        # The cached matches are in (createdAt, id) order too: the bounds cut them by bisection.
        start = 0 if low is None else bisect.bisect_left(cached, (low, ""), key=_BY_CREATED)
        end = len(cached) if high is None else bisect.bisect_right(
            cached, (high, "\uffff"), key=_BY_CREATED)
        if not _given(f, "idNotIn"):
            return cached[start:end]
        # At most 500 ids: found by bisection and cut out, not tested against every match.
        cut, at = [], start
        for hole in sorted(p for p in map(partial(self._position, cached), split_in(f["idNotIn"]))
                           if start <= p < end):
            cut += cached[at:hole]
            at = hole + 1
        cut += cached[at:end]
        return cut

    def _position(self, matches: list[MediaEntry], entry_id: str) -> int:
        """Where the entry is in matches (sorted by createdAt, id), or -1."""
        entry = self.entries.get(entry_id)
        if entry is None:
            return -1
        at = bisect.bisect_left(matches, (entry.created_at, entry.id), key=_BY_CREATED)
        return at if at < len(matches) and matches[at] is entry else -1

    # A cursor walk (createdAt >= the last page's) asks the same filter again with a new bound
    # each page; scanning the rest of the catalogue for every page made a 200,000-entry walk cost
    # O(N^2 / page size). A wide search's matches over the whole catalogue, cursor fields aside,
    # are kept instead while no entry changes: the stamp is the change count (records.py) and the
    # number of entries (a table edited directly).

    def _stamp(self) -> tuple[int, int]:
        return ENTRY_CHANGES[0], len(self.entries)

    def _cached_search(self, key: tuple[Any, ...]) -> list[MediaEntry] | None:
        hit = self.search_cache.get(key)
        if hit is None or hit[0] != self._stamp():
            return None
        self.search_cache.move_to_end(key)
        return hit[1]

    def _remember_search(self, key: tuple[Any, ...], f: Mapping[str, Any]) -> list[MediaEntry]:
        stamp = self._stamp()  # before the scan: a change during it makes the result stale
        whole = {k: v for k, v in f.items() if k not in _CURSOR_FIELDS}
        matches = self._compile(whole, by_id=False).run(self.created_range(None, None))
        self.search_cache[key] = (stamp, matches)
        self.search_cache.move_to_end(key)
        while len(self.search_cache) > CACHED_SEARCHES:
            self.search_cache.popitem(last=False)
        return matches

    def _compile(self, f: Mapping[str, Any], *, by_id: bool) -> FilterPlan:
        plan = FilterPlan()
        _plan_status(plan, f)
        _plan_fields(plan, f)
        if not _given(f, "idIn"):
            # Replacement temp entries (-1) and recycled entries (-2) are hidden from searches.
            plan.add("e.display_in_search >= 0")
        # createdAt bounds pick the candidates by bisection unless ids picked them.
        _plan_times(plan, f, self.now(), created=by_id)
        _plan_tags(plan, f)
        if _given(f, "categoryAncestorIdIn"):
            plan.memo("(e.categories_ids, e.categories)",
                      self._ancestor_test(split_in(f["categoryAncestorIdIn"])))
        return plan

    def _ancestor_test(self, ids: list[str]) -> Callable[[tuple[str, str]], bool]:
        """Entries in one of the categories or below it. The emulator has no category table: a
        category's full name is learned from the entries that carry it (ids and names align)."""
        wanted = frozenset(ids)
        names: set[str] = set()
        for entry in self.entries.values():
            if not entry.categories_ids:
                continue
            for cid, name in zip(entry.categories_ids.split(","), entry.categories.split(","),
                                 strict=False):
                if cid.strip() in wanted:
                    names.add(name.strip())

        def under(key: tuple[str, str]) -> bool:
            category_ids, categories = key
            if _category_set(category_ids) & wanted:
                return True
            return any(n.strip() == a or n.strip().startswith(a + ">")
                       for n in categories.split(",") for a in names)

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
