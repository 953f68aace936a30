"""eSearch's vocabulary: field names, the item types each field allows, sort fields, categories.

Tables copied from kaltura/server plugins/search/providers/elastic_search (ES):
``KalturaESearchEntryFieldName`` (the API names; ``id`` is ``_id`` in the index) and
``ESearchEntryItem::$allowed_search_types_for_field`` (which item type each index field takes,
and which fields a ``KalturaESearchUnifiedItem`` searches). Kept verbatim, including its quirk:
the API's ``flavor_params_ids`` maps to an index field the table names ``flavor_params``, so no
item type is allowed on it. Category items follow ES/lib/model/items/categoryEntry/*.php; the
emulator has no category table, so a category's id path is learned from the entries that carry
its ancestors (the same limit media.list's ``categoryAncestorIdIn`` has).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Any

from sandbox.kaltura.exceptions import KalturaError
from sandbox.kaltura.models import analysis
from sandbox.kaltura.records import MediaEntry

EXACT, PARTIAL, STARTS_WITH, EXISTS, RANGE = 1, 2, 3, 4, 5  # KalturaESearchItemType
ITEM_TYPES = frozenset({EXACT, PARTIAL, STARTS_WITH, EXISTS, RANGE})
OPERATORS = frozenset({1, 2, 3})  # KalturaESearchOperatorType: AND_OP, OR_OP, NOT_OP

_API_NAMES = (  # noqa: SIM905 (a word list reads better as one string)
    "id name description tags kuser_id creator_kuser_id start_date end_date reference_id "
    "conversion_profile_id redirect_entry_id entitled_kusers_edit entitled_kusers_publish "
    "entitled_kusers_view template_entry_id parent_id media_type source_type recorded_entry_id "
    "push_publish length_in_msecs created_at updated_at moderation_status entry_type admin_tags "
    "credit site_url access_control_id external_source_type is_quiz is_live user_names root_id "
    "partner_sort_value captions_content last_played_at plays rank votes display_in_search "
    "recycled_at room_type broadcast_entry_id flavor_params_ids"
).split()
API_FIELDS = {name: "_id" if name == "id" else name for name in _API_NAMES}

_E, _P, _S, _X, _R, _U = "exact", "partial", "starts", "exists", "range", "unified"
_TYPES = {_E: EXACT, _P: PARTIAL, _S: STARTS_WITH, _X: EXISTS, _R: RANGE}
_TABLE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("_id", (_E, _U)), ("name", (_E, _P, _S, _U)), ("description", (_E, _P, _S, _X, _U)),
    ("tags", (_E, _P, _S, _X, _U)), ("kuser_id", (_E,)), ("creator_kuser_id", (_E,)),
    ("start_date", (_R, _X)), ("end_date", (_R, _X)), ("reference_id", (_E, _X, _U)),
    ("conversion_profile_id", (_E, _U)), ("redirect_entry_id", (_E, _X, _U)),
    ("entitled_kusers_edit", (_E, _X)), ("entitled_kusers_publish", (_E, _X)),
    ("entitled_kusers_view", (_E, _X)), ("template_entry_id", (_E, _X, _U)),
    ("parent_id", (_E, _X, _U)), ("media_type", (_E,)), ("source_type", (_E,)),
    ("recorded_entry_id", (_E, _X, _U)), ("push_publish", (_E, _X)),
    ("length_in_msecs", (_R,)), ("created_at", (_R,)), ("updated_at", (_R,)),
    ("moderation_status", (_E, _X)), ("entry_type", (_E,)), ("admin_tags", (_E, _X)),
    ("credit", (_E, _X)), ("site_url", (_E, _X)), ("access_control_id", (_E, _X)),
    ("external_source_type", (_E, _X)), ("is_quiz", (_E, _X)), ("is_live", (_E,)),
    ("user_names", (_E, _P, _S, _X, _U)), ("root_id", (_E,)), ("partner_sort_value", (_R,)),
    ("captions_content", (_E, _P, _S, _X, _U)), ("last_played_at", (_R, _X)),
    ("plays", (_R,)), ("views", (_R,)), ("rank", (_R,)), ("votes", (_R,)),
    ("display_in_search", (_E,)), ("recycled_at", (_R,)), ("room_type", (_E,)),
    ("broadcast_entry_id", (_E, _X, _U)), ("flavor_params", (_E,)),
)
ALLOWED: dict[str, frozenset[int]] = {
    field: frozenset(_TYPES[t] for t in types if t in _TYPES) for field, types in _TABLE
}
UNIFIED: tuple[str, ...] = tuple(field for field, types in _TABLE if _U in types)
CATEGORY_ALLOWED: dict[str, frozenset[int]] = {
    "id": frozenset({EXACT, EXISTS}), "name": frozenset({EXACT, STARTS_WITH}),
    "full_ids": frozenset({EXACT, STARTS_WITH}), "ancestor_id": frozenset({EXACT}),
    "ancestor_name": frozenset({EXACT, STARTS_WITH}),
}

# Sort fields (KalturaESearchEntryOrderByFieldName) -> the value an entry sorts by, None for a
# field no entry has (start/end dates, recycling, per-period counters: every entry ties).
ORDER_KEYS: dict[str, Callable[[MediaEntry], Any] | None] = {
    "created_at": attrgetter("created_at"), "updated_at": attrgetter("updated_at"),
    "plays": attrgetter("plays"), "views": attrgetter("views"),
    "last_played_at": attrgetter("last_played_at"),
    "name": lambda e: analysis.raw(e.name) or None,  # name.raw; an empty name is not indexed
    "rank": None, "votes": None, "start_date": None, "end_date": None, "recycled_at": None,
    **{f"{what}_last_{n}": None for what in ("plays", "views")
       for n in ("1_day", "7_days", "30_days")},
}


def enum_error(value: Any, param: str, enum: str) -> KalturaError:
    """What the request deserializer answers for a value outside an enum."""
    return KalturaError(
        "INVALID_ENUM_VALUE",
        f'Invalid enumeration value "{value}" for parameter "{param}", '
        f'expecting enumeration type "{enum}"',
        {"ENUM_VAL": str(value), "PARAM_NAME": param, "ENUM_TYPE": enum},
    )


def not_allowed(kind: int | None, field: str) -> KalturaError:
    shown = "" if kind is None else str(kind)
    return KalturaError(
        "SEARCH_TYPE_NOT_ALLOWED_ON_FIELD",
        f"Type of search [{shown}] not allowed on specific field [{field}]",
        {"TYPE": shown, "FIELD": field},
    )


def _pairs(key: tuple[str, str]) -> list[tuple[str, str]]:
    """(id, full name) of each category of an entry: its categoriesIds and categories align."""
    ids, names = key
    return [(i.strip(), n.strip()) for i, n in zip(ids.split(","), names.split(","),
                                                   strict=False) if i.strip()]


class CategoryIndex:
    """What the index holds per category membership: id, leaf name, ancestors' names and ids."""

    def __init__(self, entries: Iterable[MediaEntry]) -> None:
        self.id_of: dict[str, str] = {}  # full name -> id, learned from the entries
        self.name_of: dict[str, str] = {}  # id -> full name
        seen: set[tuple[str, str]] = set()
        for entry in entries:
            key = (entry.categories_ids, entry.categories)
            if key[0] and key not in seen:
                seen.add(key)
                for cid, full in _pairs(key):
                    self.id_of.setdefault(full, cid)
                    self.name_of.setdefault(cid, full)

    def full_ids(self, full: str) -> str | None:
        """``parent>…>leaf`` as ids, or None when an ancestor's id is unknown."""
        segments = full.split(">")
        ids = [self.id_of.get(">".join(segments[:n + 1])) for n in range(len(segments))]
        return None if None in ids else ">".join(i for i in ids if i)

    def test(self, field: str, kind: int, term: str) -> Callable[[tuple[str, str]], bool]:
        wanted = analysis.keyword(term)

        def same(value: str) -> bool:
            value = analysis.keyword(value)
            return value.startswith(wanted) if kind == STARTS_WITH else value == wanted

        def test(key: tuple[str, str]) -> bool:
            pairs = _pairs(key)
            if field == "id":
                return bool(pairs) if kind == EXISTS else any(cid == wanted for cid, _ in pairs)
            if field == "name":
                return any(same(full.split(">")[-1]) for _, full in pairs)
            if field == "ancestor_name":
                return any(same(part) for _, full in pairs
                           for part in full.split(">")[:-1] if part != full.split(">")[-1])
            if field == "ancestor_id":
                above = self.name_of.get(wanted)
                return above is not None and any(full.startswith(above + ">")
                                                 for _, full in pairs)
            return any(ids is not None and same(ids)
                       for ids in (self.full_ids(full) for _, full in pairs))  # full_ids

        return test
