"""eSearch: ``elasticsearch_esearch.searchEntry(searchParams, pager)`` (reference section 11.1).

One index for both listings: eSearch reads the same entry table and createdAt index that
media.list reads (``BackendState``), and compiles its operator tree into the same kind of
``FilterPlan`` comprehension (listing.py), so both always agree on every entry. Candidates come
from the ids the query names (``objectId``, or ``id`` items at the top of an AND) or from a
createdAt range bisected out of the index; everything else is one pass over those candidates.

Semantics follow kaltura/server plugins/search/providers/elastic_search (ES below):

- the tree: AND = must, OR = should, NOT = must_not; a nested operator needs its ``operator``
  (``MISSING OPERATOR TYPE``), the top one defaults to AND, empty ``searchItems`` are refused
  (ES/lib/model/items/ESearchBaseOperator.php); enum values are checked as the request
  deserializer checks them (``INVALID_ENUM_VALUE``);
- items: the item types each field allows (ES/lib/model/items/ESearchEntryItem.php
  ``$allowed_search_types_for_field``; others ``SEARCH_TYPE_NOT_ALLOWED_ON_FIELD``); text
  matching as analysis.py describes; RANGE and EXISTS on the index's values (a never-played entry
  has no ``last_played_at``); ``kuser_id``/``creator_kuser_id`` take a partner user id and match
  nothing when no such user exists (KalturaESearchEntryItem::toObject); fields the emulator has no
  values for (admin_tags, start_date, ...) are absent from every entry, as on a partner that never
  set them;
- filters: ``objectStatuses`` (default READY only; deleted entries are not in the index),
  ``objectId``/``objectIds`` (comma lists; ``objectIdsNotIn`` excludes them), replacement temp
  and recycled entries hidden unless an ``id`` item names them or ``objectId`` is set
  (ES/lib/model/search/kEntrySearch.php ``handleDisplayInSearch``); no moderation default;
- pager: ``pageSize`` clamped to [0, 500]; ``pageSize * pageIndex > 10000`` is refused with
  ``CRITERIA EXCEEDED MAX MATCHES ALLOWED`` (ES/services/ESearchService.php); no pager at all
  gives Elasticsearch's default, the first 10 hits;
- ``totalCount`` is at most 10,000 (Elasticsearch 7's ``hits.total`` without
  ``track_total_hits``, section 11.1.9; unconfirmed on a live server);
- order: ``orderBy.orderItems`` in turn, values an entry lacks last in either direction; no
  orderBy (Kaltura: by relevance score) gives newest first.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sandbox.kaltura.exceptions import KalturaError
from sandbox.kaltura.models import analysis
from sandbox.kaltura.models.esearch_fields import (
    ALLOWED,
    API_FIELDS,
    CATEGORY_ALLOWED,
    EXACT,
    EXISTS,
    ITEM_TYPES,
    OPERATORS,
    ORDER_KEYS,
    PARTIAL,
    RANGE,
    STARTS_WITH,
    UNIFIED,
    CategoryIndex,
    enum_error,
    not_allowed,
)
from sandbox.kaltura.models.listing import FilterPlan, parse_pager, split_in
from sandbox.kaltura.models.state import BackendState
from sandbox.kaltura.records import (
    EntryStatus,
    ESearchEntryResponse,
    ESearchEntryResult,
    MediaEntry,
    UserStatus,
)

MAX_RESULT_WINDOW = 10000  # ESearchService::MAX_RESULT_WINDOW
NO_PAGER_SIZE = 10  # Elasticsearch's default size when the request sets none
_QUOTED = re.compile(r'"[^"]+"')
_PIECES = re.compile(r'"[^"]+"|[^"]*')

# Text fields: (attribute, several values per entry); keyword fields: attribute expressions.
_TEXT = {"name": ("e.name", False), "description": ("e.description", False),
         "tags": ("e.tags", True)}
_KEYWORDS = {"_id": "e.id", "root_id": "e.root_entry_id",
             "reference_id": "e.reference_id.lower()"}
# Keyword fields holding numbers: a term that is not one matches nothing.
_NUMBER_KEYWORDS = {"media_type": "e.media_type", "entry_type": "e.type",
                    "moderation_status": "e.moderation_status",
                    "display_in_search": "e.display_in_search",
                    "conversion_profile_id": "e.conversion_profile_id"}
_NUMBERS = {"created_at": ("e.created_at", ""), "updated_at": ("e.updated_at", ""),
            "plays": ("e.plays", ""), "length_in_msecs": ("e.ms_duration", ""),
            "last_played_at": ("e.last_played_at", "e.last_played_at is not None")}
_EXISTS = {"description": "e.description != ''", "tags": "e.tags.strip(', ') != ''",
           "reference_id": "e.reference_id != ''", "moderation_status": "True",
           "last_played_at": "e.last_played_at is not None"}


def esearch_error(code: str, message: str, args: dict[str, str] | None = None) -> KalturaError:
    return KalturaError(code, message, args)


def _items(node: Mapping[str, Any]) -> list[Any]:
    """searchItems as JSON sends them (a list) or as a form does ({"0": ..., "1": ...})."""
    items = node.get("searchItems")
    if isinstance(items, Mapping):
        items = [items[k] for k in sorted(items, key=lambda k: int(k) if k.isdigit() else 0)]
    if not isinstance(items, list) or not items:
        raise esearch_error("EMPTY SEARCH ITEMS ARE NOT ALLOWED",
                            "empty search items are not allowed")
    return items


def _int(value: Any) -> int | None:
    try:
        return int(float(str(value)))
    except (TypeError, ValueError):
        return None


class _Compiler:
    """One query: the operator tree as a Python expression over ``e`` in ``plan``'s names."""

    def __init__(self, backend: ESearchMixin, plan: FilterPlan) -> None:
        self.backend = backend
        self.plan = plan
        self.named_ids: set[str] = set()  # id items: those entries show even if hidden
        self.named_display: set[int] = set()
        self.recycled = False
        self._categories: CategoryIndex | None = None

    # -- the tree -------------------------------------------------------------------------------

    def operator(self, node: Mapping[str, Any], top: bool) -> str:
        kind = _int(node.get("operator")) if node.get("operator") not in (None, "") else None
        if kind is None and top:
            kind = 1  # KalturaESearchParams::validateSearchOperator: AND by default
        if kind is None:
            raise esearch_error("MISSING OPERATOR TYPE", "missing operator type")
        if kind not in OPERATORS:
            raise enum_error(node.get("operator"), "operator", "KalturaESearchOperatorType")
        parts = [p for p in (self.item(child) for child in _items(node)) if p is not None]
        if not parts:
            return "True"  # nothing to ask (a RANGE without a range): a bool with no clauses
        if kind == 3:
            return f"(not ({' or '.join(parts)}))"
        return f"({(' and ' if kind == 1 else ' or ').join(parts)})"

    def item(self, node: Any) -> str | None:
        if not isinstance(node, Mapping):
            raise esearch_error("EMPTY SEARCH ITEMS ARE NOT ALLOWED",
                                "empty search items are not allowed")
        kind = str(node.get("objectType", ""))
        if kind == "KalturaESearchEntryOperator":
            return self.operator(node, top=False)
        if kind == "KalturaESearchEntryItem":
            return self.entry_item(node)
        if kind == "KalturaESearchUnifiedItem":
            return self.unified_item(node)
        if kind == "KalturaESearchCategoryEntryItem":
            return self.category_item(node)
        if kind in ("KalturaESearchCaptionItem", "KalturaESearchEntryMetadataItem",
                    "KalturaESearchCuePointItem", "KalturaESearchNestedOperator"):
            return "False"  # the emulator indexes no caption text, metadata or cue points
        raise esearch_error("INVALID_OBJECT_TYPE", f'Invalid object type "{kind}"',
                            {"INVALID_OBJ_TYPE": kind})

    # -- entry items ----------------------------------------------------------------------------

    @staticmethod
    def _type(node: Mapping[str, Any]) -> int | None:
        raw = node.get("itemType")
        if raw in (None, ""):
            return None
        kind = _int(raw)
        if kind not in ITEM_TYPES:
            raise enum_error(raw, "itemType", "KalturaESearchItemType")
        return kind

    @staticmethod
    def _term(node: Mapping[str, Any]) -> str:
        term = node.get("searchTerm")
        return "" if term is None or isinstance(term, Mapping) else analysis.cut_term(str(term))

    def entry_item(self, node: Mapping[str, Any]) -> str | None:
        api = str(node.get("fieldName", ""))
        if api not in API_FIELDS:
            raise enum_error(api, "fieldName", "KalturaESearchEntryFieldName")
        kind, term = self._type(node), self._term(node)
        if kind == PARTIAL:
            pieces = [p.strip() for p in _PIECES.findall(term) if p.strip()]
            if len(pieces) > 1 or (pieces and _QUOTED.fullmatch(pieces[0])):
                # KalturaESearchItemImpl::handleMatches: quoted parts EXACT, the rest PARTIAL,
                # OR-ed together.
                parts = [self.field(API_FIELDS[api], EXACT if _QUOTED.fullmatch(p) else PARTIAL,
                                    p.strip('"') if _QUOTED.fullmatch(p) else p, node)
                         for p in pieces]
                return "(" + " or ".join(p for p in parts if p is not None) + ")"
            term = pieces[0] if pieces else ""
        elif kind == EXACT and _QUOTED.search(term):
            term = term[1:-1]  # enclosedInQuotationMarks: the outer characters are dropped
        return self.field(API_FIELDS[api], kind, term, node)

    def field(self, core: str, kind: int | None, term: str, node: Mapping[str, Any]) -> str | None:
        """One field of one item: the allowed-type check, the empty-term check, the query."""
        if kind not in ALLOWED.get(core, ()):
            raise not_allowed(kind, core)
        if kind in (EXACT, PARTIAL, STARTS_WITH) and not term.strip():
            raise esearch_error(
                "EMPTY SEARCH TERM IS NOT ALLOWED",
                f"Empty search term is not allowed on Field [{core}] and search type [{kind}]",
                {"FIELD": core, "TYPE": str(kind)})
        if core == "recycled_at":
            self.recycled = True
        if kind == EXACT and core == "_id":
            self.named_ids.add(analysis.keyword(term))
        if kind == EXACT and core == "display_in_search" and _int(term) is not None:
            self.named_display.add(_int(term))  # type: ignore[arg-type]
        if kind == RANGE:
            return self._range(core, node.get("range"))
        if kind == EXISTS:
            return _EXISTS.get(core, "False")
        if core in _TEXT:
            expression, multi = _TEXT[core]
            matcher = {EXACT: analysis.exact, PARTIAL: analysis.partial,
                       STARTS_WITH: analysis.starts}[kind]  # type: ignore[index]
            return self.plan.memo_of(expression, matcher(term, multi))
        if core in ("kuser_id", "creator_kuser_id"):
            user = self.backend.users.get(term.strip())
            if user is None or user.status == UserStatus.DELETED:
                return "False"  # KUSER_ID_THAT_DOESNT_EXIST: -1 matches no entry
            attr = "e.user_id" if core == "kuser_id" else "e.creator_id"
            return f"{attr} == {self.plan.bind(user.id)}"
        if core in _KEYWORDS:
            return f"{_KEYWORDS[core]} == {self.plan.bind(analysis.keyword(term))}"
        if core in _NUMBER_KEYWORDS:
            number = _int(analysis.keyword(term))
            if number is None or str(number) != analysis.keyword(term):
                return "False"
            return f"{_NUMBER_KEYWORDS[core]} == {self.plan.bind(number)}"
        return "False"  # a field the emulator has no value for: absent from every entry

    def _range(self, core: str, spec: Any) -> str | None:
        if not isinstance(spec, Mapping):
            return None  # kESearchQueryManager::getRangeQuery: no range object, no query
        attr, guard = _NUMBERS.get(core, ("", "False"))
        if not attr:
            return "False"
        parts = [guard] if guard else []
        for name, op in (("greaterThan", ">"), ("greaterThanOrEqual", ">="),
                         ("lessThan", "<"), ("lessThanOrEqual", "<=")):
            bound = _int(spec.get(name))
            if bound is not None:
                parts.append(f"{attr} {op} {self.plan.bind(bound)}")
        return "(" + " and ".join(parts) + ")" if parts else "True"

    # -- unified and category items -----------------------------------------------------------

    def unified_item(self, node: Mapping[str, Any]) -> str:
        kind, term = self._type(node), self._term(node)
        if kind in (RANGE, EXISTS) or kind is None:
            raise esearch_error(
                "SEARCH TYPE IS NOT ALLOWED ON UNIFIED SEARCH",
                f"Type of search [{'' if kind is None else kind}] not allowed on unified search",
                {"TYPE": "" if kind is None else str(kind)})
        parts = [self.field(core, kind, term, node) for core in UNIFIED
                 if kind in ALLOWED[core]]
        for field, allowed in CATEGORY_ALLOWED.items():
            if field in ("name", "ancestor_name") and kind in allowed:
                parts.append(self.category(field, kind, term, None))
        return "(" + " or ".join(p for p in parts if p is not None) + ")"

    def category_item(self, node: Mapping[str, Any]) -> str:
        field = str(node.get("fieldName", ""))
        if field not in CATEGORY_ALLOWED:
            raise enum_error(field, "fieldName", "KalturaESearchCategoryEntryFieldName")
        kind, term = self._type(node), self._term(node).strip()
        if kind not in CATEGORY_ALLOWED[field]:
            raise not_allowed(kind, field)
        if kind != EXISTS and not term:
            raise esearch_error(
                "EMPTY SEARCH TERM IS NOT ALLOWED",
                f"Empty search term is not allowed on Field [{field}] and search type [{kind}]",
                {"FIELD": field, "TYPE": str(kind)})
        status = _int(node.get("categoryEntryStatus"))
        if node.get("categoryEntryStatus") not in (None, "") and status not in (1, 2, 3, 4):
            raise enum_error(node.get("categoryEntryStatus"), "categoryEntryStatus",
                             "KalturaCategoryEntryStatus")
        assert kind is not None
        return self.category(field, kind, term, status)

    def category(self, field: str, kind: int, term: str, status: int | None) -> str:
        if status not in (None, 2):
            return "False"  # the emulator's category memberships are all ACTIVE (2)
        if self._categories is None:
            self._categories = CategoryIndex(self.backend.entries.values())
        test = self._categories.test(field, kind, term)
        return self.plan.memo_of("(e.categories_ids, e.categories)", test)


class ESearchMixin(BackendState):
    """elasticsearch_esearch.searchEntry."""

    def search_entries(self, params: Mapping[str, Any],
                       pager: Mapping[str, Any] | None) -> ESearchEntryResponse:
        operator = params.get("searchOperator")
        if not isinstance(operator, Mapping):
            raise esearch_error("EMPTY SEARCH OPERATOR IS NOT ALLOWED",
                                "empty search operator is not allowed")
        object_id, object_ids = params.get("objectId"), params.get("objectIds")
        if object_id not in (None, "") and object_ids not in (None, ""):
            raise esearch_error("OBJECTID AND OBJECTIDS NOT ALLOWED SIMULTANEOUSLY",
                                "objectId and objectIds are not allowed to use simultaneously")
        if pager is not None:
            size, index = parse_pager(pager)
            if size * index > MAX_RESULT_WINDOW:
                raise esearch_error("CRITERIA EXCEEDED MAX MATCHES ALLOWED",
                                    "Unable to generate list. max matches value was reached")
            offset = (index - 1) * size
        else:
            size, offset = NO_PAGER_SIZE, 0
        order = self._order_keys(params.get("orderBy"))
        with self.lock:
            plan = FilterPlan()
            compiler = _Compiler(self, plan)
            query = compiler.operator(operator, top=True)
            listed = split_in(object_id if object_id not in (None, "") else object_ids)
            excluded = str(params.get("objectIdsNotIn", "")).lower() in ("1", "true")
            statuses = frozenset(s for s in (_int(v) for v in split_in(
                params.get("objectStatuses")) or ["2"]) if s is not None)
            plan.add("e.status in C_ST", C_ST=statuses - {EntryStatus.DELETED})
            if listed:
                plan.add(f"e.id {'not in' if excluded else 'in'} C_IDS", C_IDS=frozenset(listed))
            elif compiler.named_ids or compiler.named_display:
                plan.add("(e.display_in_search >= 0 or e.id in C_NAMED"
                         " or e.display_in_search in C_DISPLAY)",
                         C_NAMED=frozenset(compiler.named_ids),
                         C_DISPLAY=frozenset(compiler.named_display))
            elif not compiler.recycled:
                plan.add("e.display_in_search >= 0")
            if query != "True":
                plan.add(query)
            candidates = self._search_candidates(operator, listed if not excluded else [])
            matches = plan.run(candidates)
            hits = self._sort_hits(matches, order, offset + size)[offset:offset + size]
            return ESearchEntryResponse(min(len(matches), MAX_RESULT_WINDOW),
                                        [ESearchEntryResult(e) for e in hits])

    def _search_candidates(self, operator: Mapping[str, Any], listed: Sequence[str]
                           ) -> list[MediaEntry]:
        """The fewest entries the query could match, in (createdAt, id) order."""
        ids: set[str] | None = set(listed) if listed else None
        low: int | None = None
        high: int | None = None
        top_and = str(operator.get("operator") or "1") == "1"
        children = operator.get("searchItems")
        for child in children if top_and and isinstance(children, list) else ():
            if not isinstance(child, Mapping) or \
                    child.get("objectType") != "KalturaESearchEntryItem":
                continue
            kind, field = str(child.get("itemType")), child.get("fieldName")
            if field == "id" and kind == "1" and '"' not in str(child.get("searchTerm", "")):
                named = {analysis.keyword(str(child.get("searchTerm", "")))}
                ids = named if ids is None else ids & named
            elif field == "created_at" and kind == "5" and isinstance(child.get("range"), Mapping):
                spec = child["range"]
                for name, shift in (("greaterThan", 1), ("greaterThanOrEqual", 0)):
                    if (bound := _int(spec.get(name))) is not None:
                        low = bound + shift if low is None else max(low, bound + shift)
                for name, shift in (("lessThan", -1), ("lessThanOrEqual", 0)):
                    if (bound := _int(spec.get(name))) is not None:
                        high = bound + shift if high is None else min(high, bound + shift)
        if ids is not None:
            found = [self.entries[i] for i in ids if i in self.entries]
            return sorted(found, key=lambda e: (e.created_at, e.id))
        return self.created_range(low, high)

    @staticmethod
    def _order_keys(order_by: Any) -> list[tuple[Callable[[MediaEntry], Any] | None, bool]]:
        if not isinstance(order_by, Mapping):
            return []
        items = order_by.get("orderItems")
        if isinstance(items, Mapping):
            items = list(items.values())
        keys: list[tuple[Callable[[MediaEntry], Any] | None, bool]] = []
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, Mapping):
                continue
            field = str(item.get("sortField", ""))
            if field not in ORDER_KEYS:
                raise enum_error(field, "sortField", "KalturaESearchEntryOrderByFieldName")
            direction = str(item.get("sortOrder") or "asc")
            if direction not in ("asc", "desc"):
                raise enum_error(direction, "sortOrder", "KalturaESearchSortOrder")
            keys.append((ORDER_KEYS[field], direction == "desc"))
        return keys

    @staticmethod
    def _sort_hits(matches: list[MediaEntry],
                   keys: list[tuple[Callable[[MediaEntry], Any] | None, bool]],
                   limit: int) -> list[MediaEntry]:
        """At least the first ``limit`` hits in order (``matches`` are in (createdAt, id)
        order, as the index holds them)."""
        keys = [(key, desc) for key, desc in keys if key is not None]  # None: every entry ties
        if len(keys) == 1 and keys[0][0] is ORDER_KEYS["created_at"]:
            return matches[::-1] if keys[0][1] else matches  # already in createdAt order
        items = matches[::-1]  # the base order: newest first
        for key, desc in reversed(keys):  # stable sorts, least significant key first
            # Positions ordered by a C-level key (the value list's __getitem__), and only as
            # many as the page needs when one key decides: a sort of the whole index stays
            # well under the page's budget.
            values = list(map(key, items))
            present = [i for i, v in enumerate(values) if v is not None]
            if len(keys) == 1 and limit < len(present) // 4:
                pick = heapq.nlargest if desc else heapq.nsmallest  # stable, as sorted()[:n]
                present = pick(limit, present, key=values.__getitem__)
            else:
                present.sort(key=values.__getitem__, reverse=desc)
            if len(keys) > 1 or len(present) < limit:  # values an entry lacks go last
                present += [i for i, v in enumerate(values) if v is None]
            items = [items[i] for i in present]
        return items
