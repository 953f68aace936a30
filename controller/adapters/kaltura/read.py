"""Observation queries: every entry of the partner and its flavors, in O(N/500) calls.

The observer (``controller/runtime/observe.py``) walks :func:`iter_entries` and asks
:func:`flavors_for` about each page; both go through the one :class:`KalturaSession`.

Why the walk is shaped this way (reference/kaltura-api.md §5):

- ``media.list`` refuses offsets past 10,000 (``QUERY_EXCEEDED_MAX_MATCHES_ALLOWED``), so pages
  are never addressed by ``pageIndex`` alone: the walk orders by ``+createdAt`` and moves
  ``createdAtGreaterThanOrEqual`` to the last createdAt seen, sending the ids already seen in that
  boundary second as ``idNotIn`` (fewer than 500 of them, under the silent 500-value cut) and
  de-duplicating by id as well.
- Tagging or editing an entry changes ``updatedAt``, never ``createdAt``: the cursor is stable
  under concurrent edits, where offset paging over a changing result set skips entries (the
  Princeton tool's flaw 7).
- A second holding 500 entries or more would pin the cursor: that one second is paged apart, by
  ``pageIndex`` inside ``createdAt = t``, then the cursor moves to t + 1.
- Without ``statusIn`` Kaltura lists READY entries only: the walk asks for every status but
  DELETED, so entries without content, pending or in error are seen (and reported).
- Flavors come from ``flavorAsset.list`` with ``entryIdIn`` (≤ 500 ids), several batches per
  multirequest; a batch is sized so its flavors fit one 500-item page, and any batch that still
  overflows is paged.
- The listings are read from the answer's XML, field by field (``KalturaSession.call_xml``):
  an entry or flavor is the mapping of its fields (:data:`Fields`), never a client object.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

from KalturaClient.Plugins.Core import (
    KalturaFilterPager,
    KalturaFlavorAssetFilter,
    KalturaMediaEntryFilter,
)

from controller.adapters.kaltura.session import KalturaSession
from controller.errors import KarchiveError, PermanentError, Source
from policies.observed import FlavorFacts, ObservedEntry

PAGE_SIZE = 500  # Kaltura's pager ceiling: a larger pageSize is clamped silently
MAX_IN_VALUES = 500  # "*In" lists are cut at 500 values without an error
# Every status karchive reports on: all but DELETED (3). reference/kaltura-api.md §5.
OBSERVED_STATUSES = "-2,-1,0,1,2,4,5,6,7"
# Kaltura reads |v| <= 315360000 (ten years) in a time filter as relative to now.
_RELATIVE_TIME_LIMIT = 315_360_000
_FLAVOR_PAGE_TARGET = 400  # flavors one batch should return: headroom under the 500-item page
# The fields the observation reads (to_observed, to_flavor): Kaltura answers only these
# (KalturaSession: a detached response profile and ignoreNull), about a third of each object.
ENTRY_FIELDS = ("id,name,userId,creatorId,status,mediaType,createdAt,updatedAt,lastPlayedAt,"
                "plays,duration,tags,categoriesIds,categories,replacementStatus,"
                "replacingEntryId,referenceId")
FLAVOR_FIELDS = "id,entryId,flavorParamsId,isOriginal,status,sizeInBytes,size,fileExt,updatedAt"
# One listed object's fields by name: the text of its XML elements (an element left out is a
# field Kaltura left null), or a client object's values (:func:`fields_of`).
Fields = Mapping[str, Any]


def value_of(value: Any, default: Any = None) -> Any:
    """A field as a plain value: enum wrappers unwrapped, unset/None as ``default``."""
    if value is None or value is NotImplemented:
        return default
    getter = getattr(value, "getValue", None)
    return getter() if getter is not None else value


def int_of(value: Any, default: int = 0) -> int:
    raw = value_of(value, None)
    try:
        return int(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        return default


def bool_of(value: Any) -> bool:
    """A boolean field: True/False, or its XML text ("1"/"true", as Base.py getXmlNodeBool)."""
    return value_of(value) in (True, 1, "1", "true")


def fields_of(obj: Any, names: str) -> dict[str, Any]:
    """A client object's fields ``names`` (comma separated) as :data:`Fields`."""
    return {name: getattr(obj, name, None) for name in names.split(",")}


def listing(result: Any) -> tuple[list[dict[str, str | None]], int]:
    """A list response's XML element (``<objects><item>…`` and ``<totalCount>``) as each
    object's :data:`Fields` and the totalCount."""
    objects = result.find("objects")
    items = [] if objects is None else [
        {child.tag: child.text for child in item} for item in objects]
    return items, int_of(result.findtext("totalCount"))


def split_tags(text: str | None) -> frozenset[str]:
    """Tags as Kaltura normalises them (media.update: trimmed, lower case, comma separated)."""
    return _tag_set(text or "")


# Memory at 200,000 entries: most entries share a handful of tag sets, category lists and
# owners, so equal values are built once and shared (frozen values make sharing safe).
@lru_cache(maxsize=1 << 16)
def _tag_set(text: str) -> frozenset[str]:
    return frozenset(sys.intern(t.strip().lower()) for t in text.split(",") if t.strip())


@lru_cache(maxsize=1 << 16)
def _category_ids(text: str) -> frozenset[int]:
    return frozenset(int(c) for c in text.split(",") if c.strip().isdigit())


@lru_cache(maxsize=1 << 16)
def _category_names(text: str) -> tuple[str, ...]:
    return tuple(sys.intern(c.strip()) for c in text.split(",") if c.strip())


def _shared(text: Any) -> str:
    return sys.intern(str(text)) if text else ""


def to_observed(entry: Fields) -> ObservedEntry:
    """A media entry's fields as an ObservedEntry without flavors or archive (added later)."""
    get = entry.get
    last_played = int_of(get("lastPlayedAt"), 0)
    return ObservedEntry(
        entry_id=str(get("id")),
        name=value_of(get("name"), ""),
        user_id=_shared(value_of(get("userId"), "")),
        creator_id=_shared(value_of(get("creatorId"), "")),
        status=int_of(get("status")),
        media_type=int_of(get("mediaType"), 1),
        created_at=int_of(get("createdAt")),
        updated_at=int_of(get("updatedAt")),
        last_played_at=last_played or None,
        plays=int_of(get("plays")),
        duration=int_of(get("duration")),
        tags=split_tags(value_of(get("tags"), "")),
        category_ids=_category_ids(str(value_of(get("categoriesIds"), ""))),
        categories=_category_names(str(value_of(get("categories"), ""))),
        replacement_status=int_of(get("replacementStatus")),
        replacing_entry_id=value_of(get("replacingEntryId"), None) or None,
        reference_id=value_of(get("referenceId"), ""),
    )


def to_flavor(asset: Fields) -> FlavorFacts:
    """A flavor asset's fields as FlavorFacts."""
    get = asset.get
    size_bytes = int_of(get("sizeInBytes"), 0) or int_of(get("size"), 0) * 1024  # size is in KB
    return FlavorFacts(
        flavor_id=str(get("id")),
        flavor_params_id=int_of(get("flavorParamsId")),
        is_original=bool_of(get("isOriginal")),
        status=int_of(get("status"), -1),
        size_bytes=size_bytes,
        file_ext=_shared(value_of(get("fileExt"), "")),
        updated_at=int_of(get("updatedAt")),
    )


# -- entries ----------------------------------------------------------------------------------


def _entry_filter(overrides: Mapping[str, Any] | None) -> Any:
    flt = KalturaMediaEntryFilter()
    flt.statusIn = OBSERVED_STATUSES
    for name, value in (overrides or {}).items():
        if not hasattr(flt, name):
            raise PermanentError(f"media.list has no filter field {name!r}",
                                 source=Source.KALTURA)
        setattr(flt, name, value)
    # The walk owns the order: everything below depends on it.
    flt.orderBy = "+createdAt"
    return flt


def _list(session: KalturaSession, flt: Any, page_index: int = 1, *,
          clock: Callable[[int], None] | None = None) -> tuple[list[dict[str, str | None]], int]:
    pager = KalturaFilterPager()
    pager.pageSize = PAGE_SIZE
    pager.pageIndex = page_index
    if clock is None:
        response = session.call_xml("media.list", lambda c: c.media.list(flt, pager),
                                    fields=ENTRY_FIELDS)
    else:
        # Kaltura's clock read in the same request, just before the list runs (sub-calls run
        # in order: kaltura/server api_v3/lib/KalturaFrontController.php handleMultiRequest):
        # the instant the listing is complete to, on Kaltura's clock, in one HTTP request.
        now, response = session.multirequest(
            "media.list", [lambda c: c.system.getTime(), lambda c: c.media.list(flt, pager)],
            fields=ENTRY_FIELDS, xml=True)
        for answer in (now, response):
            if isinstance(answer, KarchiveError):
                raise answer
        clock(int_of(now.text))
    return listing(response)


def entries_by_id(session: KalturaSession, entry_ids: Sequence[str],
                  filter_overrides: Mapping[str, Any] | None = None) -> Iterator[ObservedEntry]:
    """The entries ``entry_ids`` names (those that exist and are not deleted), walked
    ``MAX_IN_VALUES`` ids a call: Kaltura cuts an ``idIn`` list there silently."""
    for begin in range(0, len(entry_ids), MAX_IN_VALUES):
        ids = ",".join(entry_ids[begin:begin + MAX_IN_VALUES])
        yield from iter_entries(session, {**(filter_overrides or {}), "idIn": ids})


def iter_entries(
    session: KalturaSession,
    filter_overrides: Mapping[str, Any] | None = None,
    *,
    on_total: Callable[[int], None] | None = None,
    on_clock: Callable[[int], None] | None = None,
) -> Iterator[ObservedEntry]:
    """Every entry of the partner (all statuses but DELETED), each exactly once, oldest first.

    ``filter_overrides`` sets extra KalturaMediaEntryFilter fields (``{"idIn": "0_a,0_b"}``,
    ``{"statusIn": "2"}``); ``orderBy`` and the createdAt cursor stay the walk's own.
    ``on_total`` hears the first page's totalCount (the true, uncapped count: for progress);
    ``on_clock`` hears Kaltura's clock (unix seconds), read in the first page's request.
    """
    cursor: int | None = None
    boundary: set[str] = set()  # ids seen whose createdAt == cursor (fewer than PAGE_SIZE)
    while True:
        flt = _entry_filter(filter_overrides)
        if cursor is not None:
            flt.createdAtGreaterThanOrEqual = cursor
            if boundary:
                flt.idNotIn = ",".join(sorted(boundary))
        page, total = _list(session, flt, clock=on_clock if cursor is None else None)
        if on_total is not None and cursor is None:
            on_total(total)
        for entry in page:
            if entry.get("id") not in boundary:
                yield to_observed(entry)
        if len(page) < PAGE_SIZE:
            return  # a short page is the last one
        first, last = int_of(page[0].get("createdAt")), int_of(page[-1].get("createdAt"))
        if first == last:
            # A whole page inside one second: the cursor cannot move past it by itself.
            seen = boundary | _ids(page)
            yield from _walk_second(session, filter_overrides, last, seen)
            cursor, boundary = last + 1, set()
        else:
            cursor = last
            boundary = {str(e.get("id")) for e in page if int_of(e.get("createdAt")) == last}
        if cursor <= _RELATIVE_TIME_LIMIT:
            raise PermanentError(
                f"media.list returned createdAt {cursor}, which Kaltura would read as a relative "
                "time; the catalogue's dates look wrong", source=Source.KALTURA,
            )


def _ids(page: Collection[Fields]) -> set[str]:
    return {str(e.get("id")) for e in page}


def _walk_second(
    session: KalturaSession,
    filter_overrides: Mapping[str, Any] | None,
    second: int,
    seen: set[str],
) -> Iterator[ObservedEntry]:
    """Every entry created in ``second`` not in ``seen``, by pageIndex inside that second.

    The order of ties is not specified by Kaltura, so the pass is repeated (at most 3 times)
    until the ids seen match the second's totalCount.
    """
    in_second: set[str] = set()
    total = 0
    for _pass in range(3):
        page_index = 1
        while True:
            flt = _entry_filter(filter_overrides)
            flt.createdAtGreaterThanOrEqual = second
            flt.createdAtLessThanOrEqual = second
            page, total = _list(session, flt, page_index)
            for entry in page:
                entry_id = str(entry.get("id"))
                in_second.add(entry_id)
                if entry_id not in seen:
                    seen.add(entry_id)
                    yield to_observed(entry)
            if len(page) < PAGE_SIZE or page_index * PAGE_SIZE >= 10_000:
                break
            page_index += 1
        if len(in_second) >= total:
            return
    # More than 10,000 entries in one second, or an unstable order: refuse to claim completeness.
    raise PermanentError(
        f"could not list every entry created at {second} (Kaltura reports {total}); "
        "the observation would be incomplete", source=Source.KALTURA,
    )


# -- flavors ----------------------------------------------------------------------------------


def _flavor_call(entry_ids: Sequence[str], page_index: int) -> Any:
    flt = KalturaFlavorAssetFilter()
    flt.entryIdIn = ",".join(entry_ids)
    pager = KalturaFilterPager()
    pager.pageSize = PAGE_SIZE
    pager.pageIndex = page_index
    return lambda client: client.flavorAsset.list(flt, pager)


def flavors_for(
    session: KalturaSession,
    entry_ids: Iterable[str],
    *,
    per_request: int = 20,
    expected_per_entry: float = 4.0,
) -> dict[str, list[FlavorFacts]]:
    """The flavors of each entry in ``entry_ids`` (an entry without any maps to ``[]``).

    Batches of ``entryIdIn`` sized so each batch's flavors fit one page, ``per_request`` batches
    in one multirequest; a batch whose totalCount exceeds what came back is paged further.
    """
    ids = list(dict.fromkeys(entry_ids))
    found: dict[str, list[FlavorFacts]] = {entry_id: [] for entry_id in ids}
    batch_size = max(1, min(MAX_IN_VALUES, int(_FLAVOR_PAGE_TARGET / max(expected_per_entry, 1))))
    # (batch of entry ids, page index) still to fetch
    todo: list[tuple[Sequence[str], int]] = [
        (ids[i : i + batch_size], 1) for i in range(0, len(ids), batch_size)
    ]
    while todo:
        chunk, todo = todo[:per_request], todo[per_request:]
        answers = session.multirequest(
            "flavorasset.list", [_flavor_call(batch, page) for batch, page in chunk],
            fields=FLAVOR_FIELDS, xml=True,
        )
        for (batch, page), answer in zip(chunk, answers, strict=True):
            if isinstance(answer, KarchiveError):
                raise answer
            objects, total = listing(answer)
            for asset in objects:
                entry_id = asset.get("entryId")
                if entry_id in found:
                    found[entry_id].append(to_flavor(asset))
            if page * PAGE_SIZE < total and objects:
                todo.append((batch, page + 1))
    return found


def server_time(session: KalturaSession) -> int:
    """Kaltura's clock now (``system.getTime``, unix seconds: kaltura/server
    api_v3/services/SystemService.php returns ``time()``). Owner notices run on it — their
    record's dates, the grace period, the plays they are compared with — so a machine with a
    wrong clock (or a move to another machine) neither swaps early nor holds for ever."""
    return int_of(session.call("system.gettime", lambda client: client.system.getTime()))
