"""Building eSearch requests with the official client's own classes (shared by the tests)."""

from __future__ import annotations

from typing import Any

from KalturaClient.Plugins.Core import KalturaPager
from KalturaClient.Plugins.ElasticSearch import (
    KalturaESearchCategoryEntryItem,
    KalturaESearchEntryItem,
    KalturaESearchEntryOperator,
    KalturaESearchEntryOrderByItem,
    KalturaESearchEntryParams,
    KalturaESearchOrderBy,
    KalturaESearchRange,
    KalturaESearchUnifiedItem,
)

EXACT, PARTIAL, STARTS_WITH, EXISTS, RANGE = 1, 2, 3, 4, 5
AND, OR, NOT = 1, 2, 3
ALL_BUT_DELETED = "-2,-1,0,1,2,4,5,6,7"


def item(field: str, kind: int, term: str | None = None, **bounds: int) -> Any:
    entry_item = KalturaESearchEntryItem()
    entry_item.fieldName = field
    entry_item.itemType = kind
    if term is not None:
        entry_item.searchTerm = term
    if bounds:
        entry_item.range = KalturaESearchRange(**bounds)
    return entry_item


def category(field: str, kind: int, term: str | None = None, status: int | None = None) -> Any:
    found = KalturaESearchCategoryEntryItem()
    found.fieldName = field
    found.itemType = kind
    if term is not None:
        found.searchTerm = term
    if status is not None:
        found.categoryEntryStatus = status
    return found


def unified(kind: int, term: str) -> Any:
    found = KalturaESearchUnifiedItem()
    found.itemType = kind
    found.searchTerm = term
    return found


def op(kind: int | None, *items: Any) -> Any:
    operator = KalturaESearchEntryOperator()
    if kind is not None:
        operator.operator = kind
    operator.searchItems = list(items)
    return operator


def params(operator: Any, order: tuple[tuple[str, str], ...] = (), **fields: Any) -> Any:
    search = KalturaESearchEntryParams()
    search.searchOperator = operator
    for name, value in fields.items():
        setattr(search, name, value)
    if order:
        order_by = KalturaESearchOrderBy()
        order_by.orderItems = [KalturaESearchEntryOrderByItem(sortField=f, sortOrder=o)
                               for f, o in order]
        search.orderBy = order_by
    return search


def search(client: Any, operator: Any, pager: Any = None, *,
           order: tuple[tuple[str, str], ...] = (), **fields: Any) -> Any:
    """searchEntry with a 500-entry first page unless told otherwise (None: no pager)."""
    chosen = KalturaPager(pageSize=500) if pager is None else pager
    return client.elasticSearch.eSearch.searchEntry(params(operator, order, **fields),
                                                    None if chosen == "none" else chosen)


def hit_ids(response: Any) -> list[str]:
    return [hit.object.id for hit in response.objects]


def every_id(client: Any, operator: Any, **fields: Any) -> list[str]:
    """All hits, page by page until an empty page, as the Princeton tool pages."""
    found: list[str] = []
    for index in range(1, 21):
        page = search(client, operator, KalturaPager(pageSize=500, pageIndex=index), **fields)
        if not page.objects:
            break
        found += hit_ids(page)
    return found
