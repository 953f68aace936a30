"""elasticsearch_esearch.searchEntry through the official client: items, operators, filters,
order, pager and the errors Kaltura answers (reference section 11.1)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from emu_api import BASE_TIME, Api, make_entry
from esearch_helpers import (
    AND,
    EXACT,
    EXISTS,
    NOT,
    OR,
    PARTIAL,
    RANGE,
    STARTS_WITH,
    category,
    hit_ids,
    item,
    op,
    search,
    unified,
)
from KalturaClient.exceptions import KalturaException
from KalturaClient.Plugins.Core import KalturaPager

from sandbox.kaltura.models import KalturaBackend
from sandbox.kaltura.records import EntryStatus

DAY = 86400


def refused(call: Any) -> tuple[str, str]:
    with pytest.raises(KalturaException) as caught:
        call()
    return str(caught.value.code), str(caught.value.message)


@pytest.fixture
def library(backend: KalturaBackend) -> KalturaBackend:
    """Ten entries with the tags, dates and plays the tests ask about."""
    rows = [  # n, tags, created (days after BASE_TIME), last played (days) or None, plays
        (1, "archived_to_s3, flavors_deleted", 10, 400, 9),
        (2, "archived_to_s3", 20, None, 0),
        (3, "Lecture, kaltura capture", 30, 35, 3),
        (4, "lectures", 40, 45, 1),
        (5, "archive_exempt", 50, None, 0),
        (6, "", 60, 65, 12),
        (7, "seminar", 70, 75, 2),
        (8, "archived", 80, 85, 5),
    ]
    for n, tags, created, played, plays in rows:
        make_entry(backend, n, tags=tags, created_at=BASE_TIME + created * DAY,
                   last_played_at=None if played is None else BASE_TIME + played * DAY,
                   plays=plays, name=f"Lecture {n} Q&A Café", description=f"week {n}",
                   categories_ids="101" if n % 2 else "102,103",
                   categories="Courses>PHY101" if n % 2 else "Courses>PHY205,Events>Public")
    make_entry(backend, 9, status=EntryStatus.NO_CONTENT, created_at=BASE_TIME + 90 * DAY)
    make_entry(backend, 10, display_in_search=-1, created_at=BASE_TIME + 95 * DAY,
               tags="archived_to_s3")
    return backend


def ids_of(*numbers: int) -> list[str]:
    return [f"0_e{n:07d}" for n in numbers]


def test_the_response_is_kaltura_esearch_entry_response_of_media_entries(
    api: Api, library: KalturaBackend
) -> None:
    found = search(api.client, op(AND, item("id", EXACT, "0_e0000003")))
    assert type(found).__name__ == "KalturaESearchEntryResponse"
    assert found.totalCount == 1
    hit = found.objects[0]
    assert type(hit).__name__ == "KalturaESearchEntryResult"
    assert (hit.highlight, hit.itemsData) == ([], [])
    entry = hit.object
    assert type(entry).__name__ == "KalturaMediaEntry"
    assert (entry.id, entry.plays, entry.tags) == ("0_e0000003", 3, "Lecture, kaltura capture")
    assert entry.thumbnailUrl.startswith(api.server.url)  # as media.get shows it


def test_tags_exact_is_a_whole_word_case_insensitive_and_not_excludes(
    api: Api, library: KalturaBackend
) -> None:
    c = api.client
    assert hit_ids(search(c, op(AND, item("tags", EXACT, "ARCHIVED_TO_S3")))) == ids_of(2, 1)
    assert hit_ids(search(c, op(AND, item("tags", EXACT, "archived")))) == ids_of(8)
    assert hit_ids(search(c, op(AND, item("tags", EXACT, "capture")))) == ids_of(3)  # a phrase
    not_placeholders = op(AND, item("tags", EXACT, "archived_to_s3"),
                          op(NOT, item("tags", EXACT, "flavors_deleted")))
    assert hit_ids(search(c, not_placeholders)) == ids_of(2)
    assert hit_ids(search(c, op(NOT, item("tags", EXACT, "archived_to_s3")))) == ids_of(
        8, 7, 6, 5, 4, 3)


def test_tags_partial_matches_words_whole_values_and_most_trigrams(
    api: Api, library: KalturaBackend
) -> None:
    c = api.client
    # "lecture" shares 4 of its 5 3-grams with "lectures": a PARTIAL match (80 % are needed).
    assert hit_ids(search(c, op(AND, item("tags", PARTIAL, "lecture")))) == ids_of(4, 3)
    # A one-word term is matched by 3-grams too: "archived_to_s3" has those of "archived", and
    # "archive_exempt" holds 5 of the 6. Real Kaltura's index does the same with its mapping:
    # a tool that tells archived entries by a PARTIAL tag search must check the tag itself.
    assert hit_ids(search(c, op(AND, item("tags", PARTIAL, "archived_to_s3")))) == ids_of(
        8, 5, 2, 1)
    # Two words: every word must be there (no 3-grams for a term of more than one word).
    assert hit_ids(search(c, op(AND, item("tags", PARTIAL, "capture kaltura")))) == ids_of(3)
    assert hit_ids(search(c, op(AND, item("tags", PARTIAL, "capture seminar")))) == []
    # Quoted parts are EXACT, the rest PARTIAL, OR-ed (KalturaESearchItemImpl::handleMatches).
    assert hit_ids(search(c, op(AND, item("tags", PARTIAL, 'seminar "flavors_deleted"')))) == \
        ids_of(7, 1)


def test_starts_with_and_exists(api: Api, library: KalturaBackend) -> None:
    c = api.client
    assert hit_ids(search(c, op(AND, item("tags", STARTS_WITH, "Kaltura cap")))) == ids_of(3)
    assert hit_ids(search(c, op(AND, item("name", STARTS_WITH, "lecture 7")))) == ids_of(7)
    assert hit_ids(search(c, op(NOT, item("tags", EXISTS)))) == ids_of(6)
    never = op(NOT, item("last_played_at", EXISTS))
    assert hit_ids(search(c, never)) == ids_of(5, 2)


def test_name_and_description_match_words_accents_and_special_characters(
    api: Api, library: KalturaBackend
) -> None:
    c = api.client
    assert len(hit_ids(search(c, op(AND, item("name", EXACT, "q&a cafe"))))) == 8
    assert hit_ids(search(c, op(AND, item("name", EXACT, "lecture 4 q&a")))) == ids_of(4)
    assert hit_ids(search(c, op(AND, item("description", EXACT, "week 6")))) == ids_of(6)


def test_date_and_plays_ranges(api: Api, library: KalturaBackend) -> None:
    c = api.client
    created = item("created_at", RANGE, greaterThan=BASE_TIME + 20 * DAY,
                   lessThanOrEqual=BASE_TIME + 50 * DAY)
    assert hit_ids(search(c, op(AND, created))) == ids_of(5, 4, 3)
    # Never-played entries have no last_played_at: no range ever matches them.
    played = item("last_played_at", RANGE, lessThan=BASE_TIME + 50 * DAY)
    assert hit_ids(search(c, op(AND, played))) == ids_of(4, 3)
    old = item("last_played_at", RANGE, greaterThanOrEqual=BASE_TIME + 400 * DAY)
    assert hit_ids(search(c, op(AND, old))) == ids_of(1)
    few = item("plays", RANGE, lessThan=2)
    assert hit_ids(search(c, op(AND, few))) == ids_of(5, 4, 2)
    assert hit_ids(search(c, op(AND, item("created_at", RANGE)))) == ids_of(8, 7, 6, 5, 4, 3,
                                                                             2, 1)


def test_operators_nest(api: Api, library: KalturaBackend) -> None:
    query = op(AND,
               op(OR, item("tags", EXACT, "seminar"), item("plays", RANGE, greaterThan=8)),
               op(NOT, item("tags", EXACT, "flavors_deleted")))
    assert hit_ids(search(api.client, query)) == ids_of(7, 6)
    assert hit_ids(search(api.client, op(None, item("id", EXACT, "0_e0000002")))) == ids_of(2)


def test_items_and_ids_by_user_id_and_media_type(api: Api, library: KalturaBackend) -> None:
    api.backend.entries["0_e0000004"].user_id = "jdoe"
    api.backend.ensure_user("jdoe")
    api.backend.entries["0_e0000006"].user_id = "ghost"  # no such user: nothing matches it
    c = api.client
    assert hit_ids(search(c, op(AND, item("kuser_id", EXACT, "jdoe")))) == ids_of(4)
    assert hit_ids(search(c, op(AND, item("kuser_id", EXACT, "ghost")))) == []
    assert len(hit_ids(search(c, op(AND, item("media_type", EXACT, "1"))))) == 8
    listed = search(c, op(AND, item("tags", EXISTS)), objectIds="0_e0000001,0_e0000003")
    assert hit_ids(listed) == ids_of(3, 1)
    others = search(c, op(AND, item("tags", EXISTS)), objectIds="0_e0000001,0_e0000003",
                    objectIdsNotIn=1)
    # Any objectIds, even excluded ones, lift the hidden-entries filter (kEntrySearch::
    # handleDisplayInSearch returns when an object id is set): the temp entry 10 shows.
    assert hit_ids(others) == ids_of(10, 8, 7, 5, 4, 2)


def test_default_statuses_and_hidden_entries(api: Api, library: KalturaBackend) -> None:
    c = api.client
    assert hit_ids(search(c, op(AND, item("tags", EXACT, "archived_to_s3")))) == ids_of(2, 1)
    nothing = op(AND, item("created_at", RANGE, greaterThan=BASE_TIME + 85 * DAY))
    assert hit_ids(search(c, nothing)) == []  # NO_CONTENT is not READY; the temp is hidden
    assert hit_ids(search(c, nothing, objectStatuses="7")) == ids_of(9)
    # An id item names the hidden temp entry, and so does objectId.
    assert hit_ids(search(c, op(AND, item("id", EXACT, "0_e0000010")))) == ids_of(10)
    assert hit_ids(search(c, op(AND, item("tags", EXISTS)), objectId="0_e0000010")) == \
        ids_of(10)
    api.client.media.delete("0_e0000008")
    assert hit_ids(search(c, op(AND, item("id", EXACT, "0_e0000008")),
                          objectStatuses="3")) == []  # deleted entries leave the index


def test_order_by(api: Api, library: KalturaBackend) -> None:
    c = api.client
    everything = op(AND, item("created_at", RANGE))
    assert hit_ids(search(c, everything)) == ids_of(8, 7, 6, 5, 4, 3, 2, 1)  # no order: newest
    assert hit_ids(search(c, everything, order=(("created_at", "asc"),))) == ids_of(
        1, 2, 3, 4, 5, 6, 7, 8)
    assert hit_ids(search(c, everything, order=(("plays", "desc"),))) == ids_of(
        6, 1, 8, 3, 7, 4, 5, 2)
    # Entries never played have no value: last in either direction.
    for direction, played in (("asc", (3, 4, 6, 7, 8, 1)), ("desc", (1, 8, 7, 6, 4, 3))):
        assert hit_ids(search(c, everything, order=(("last_played_at", direction),))) == \
            ids_of(*played, 5, 2)
    two_keys = (("last_played_at", "desc"), ("created_at", "asc"))
    assert hit_ids(search(c, everything, order=two_keys))[-2:] == ids_of(2, 5)


def test_items_refused_as_kaltura_refuses_them(api: Api, library: KalturaBackend) -> None:
    c = api.client
    cases = [
        (op(AND, item("media_type", PARTIAL, "1")), "SEARCH_TYPE_NOT_ALLOWED_ON_FIELD",
         "Type of search [2] not allowed on specific field [media_type]"),
        (op(AND, item("created_at", EXACT, "1")), "SEARCH_TYPE_NOT_ALLOWED_ON_FIELD",
         "Type of search [1] not allowed on specific field [created_at]"),
        (op(AND, item("id", PARTIAL, "0_e")), "SEARCH_TYPE_NOT_ALLOWED_ON_FIELD",
         "Type of search [2] not allowed on specific field [_id]"),
        # The server's table names this field flavor_params: no item type is allowed on it.
        (op(AND, item("flavor_params_ids", EXACT, "0")), "SEARCH_TYPE_NOT_ALLOWED_ON_FIELD",
         "Type of search [1] not allowed on specific field [flavor_params_ids]"),
        (op(AND, item("tags", EXACT, "  ")), "EMPTY SEARCH TERM IS NOT ALLOWED",
         "Empty search term is not allowed on Field [tags] and search type [1]"),
        (op(AND), "EMPTY SEARCH ITEMS ARE NOT ALLOWED", "empty search items are not allowed"),
        (op(AND, op(None, item("tags", EXISTS))), "MISSING OPERATOR TYPE",
         "missing operator type"),
        (op(AND, unified(RANGE, "1")), "SEARCH TYPE IS NOT ALLOWED ON UNIFIED SEARCH",
         "Type of search [5] not allowed on unified search"),
        (op(AND, item("views", RANGE, lessThan=2)), "INVALID_ENUM_VALUE",
         'Invalid enumeration value "views" for parameter "fieldName", expecting enumeration '
         'type "KalturaESearchEntryFieldName"'),
    ]
    for query, code, message in cases:
        assert refused(lambda q=query: search(c, q)) == (code, message)
    assert refused(lambda: search(c, op(AND, item("tags", 9, "x"))))[0] == "INVALID_ENUM_VALUE"
    assert refused(lambda: search(c, None)) == (
        "EMPTY SEARCH OPERATOR IS NOT ALLOWED", "empty search operator is not allowed")
    assert refused(lambda: search(c, op(AND, item("tags", EXISTS)), objectId="0_e0000001",
                                  objectIds="0_e0000002"))[0] == \
        "OBJECTID AND OBJECTIDS NOT ALLOWED SIMULTANEOUSLY"
    assert refused(lambda: search(c, op(AND, item("tags", EXISTS)),
                                  order=(("bogus", "asc"),)))[0] == "INVALID_ENUM_VALUE"


def test_unified_and_category_items(api: Api, library: KalturaBackend) -> None:
    c = api.client
    assert hit_ids(search(c, op(AND, unified(EXACT, "seminar")))) == ids_of(7)
    assert hit_ids(search(c, op(AND, unified(EXACT, "0_e0000002")))) == ids_of(2)
    assert hit_ids(search(c, op(AND, unified(EXACT, "week 5")))) == ids_of(5)
    odd = ids_of(7, 5, 3, 1)
    assert hit_ids(search(c, op(AND, unified(EXACT, "phy101")))) == odd  # a category's name
    assert hit_ids(search(c, op(AND, category("id", EXACT, "101")))) == odd
    assert hit_ids(search(c, op(AND, category("name", EXACT, "public")))) == ids_of(8, 6, 4, 2)
    assert hit_ids(search(c, op(AND, category("name", STARTS_WITH, "PHY2")))) == ids_of(
        8, 6, 4, 2)
    assert len(hit_ids(search(c, op(AND, category("ancestor_name", EXACT, "courses"))))) == 8
    assert hit_ids(search(c, op(AND, category("ancestor_name", EXACT, "phy101")))) == []
    assert hit_ids(search(c, op(AND, category("id", EXACT, "101", status=1)))) == []  # PENDING
    assert hit_ids(search(c, op(NOT, category("id", EXISTS)))) == []


def test_pager_window_and_total_count(api: Api, backend: KalturaBackend) -> None:
    for n in range(10_050):
        make_entry(backend, n, created_at=BASE_TIME + n, plays=n % 97,
                   last_played_at=None if n % 3 else BASE_TIME + n % 1000)
    c = api.client
    everything = op(AND, item("created_at", RANGE))
    last = search(c, everything, KalturaPager(pageSize=500, pageIndex=20))
    assert len(last.objects) == 500
    assert last.totalCount == 10_000  # Elasticsearch 7 counts hits up to 10,000
    for size, index in ((500, 21), (300, 34), (10_000, 21)):  # 10,000 is clamped to 500 first
        assert refused(lambda s=size, i=index: search(c, everything, KalturaPager(
            pageSize=s, pageIndex=i))) == ("CRITERIA EXCEEDED MAX MATCHES ALLOWED",
                                           "Unable to generate list. max matches value was "
                                           "reached")
    assert len(search(c, everything, KalturaPager(pageSize=900)).objects) == 500
    assert len(search(c, everything, KalturaPager()).objects) == 30  # KalturaPager's default
    assert len(search(c, everything, "none").objects) == 10  # no pager: Elasticsearch's 10
    narrow = op(AND, item("created_at", RANGE, lessThan=BASE_TIME + 40))
    assert search(c, narrow).totalCount == 40  # exact below the cap
    # A page of a sort over everything: the same as sorting the whole list and slicing it.
    newest_first = sorted(backend.entries.values(), key=lambda e: e.created_at, reverse=True)
    by_plays = sorted(newest_first, key=lambda e: e.plays, reverse=True)
    page = search(c, everything, KalturaPager(pageSize=500, pageIndex=3),
                  order=(("plays", "desc"),))
    assert hit_ids(page) == [e.id for e in by_plays[1000:1500]]
    played = [e for e in newest_first if e.last_played_at is not None]
    by_play = sorted(played, key=lambda e: e.last_played_at)
    never = [e for e in newest_first if e.last_played_at is None]
    page = search(c, everything, KalturaPager(pageSize=500, pageIndex=7),
                  order=(("last_played_at", "asc"),))
    assert hit_ids(page) == [e.id for e in (by_play + never)[3000:3500]]  # never played last


def test_a_raw_form_encoded_request_is_understood(api: Api, library: KalturaBackend) -> None:
    body = {
        "ks": api.client.getKs(), "format": "1",
        "searchParams[objectType]": "KalturaESearchEntryParams",
        "searchParams[searchOperator][objectType]": "KalturaESearchEntryOperator",
        "searchParams[searchOperator][operator]": "1",
        "searchParams[searchOperator][searchItems][0][objectType]": "KalturaESearchEntryItem",
        "searchParams[searchOperator][searchItems][0][fieldName]": "tags",
        "searchParams[searchOperator][searchItems][0][itemType]": "1",
        "searchParams[searchOperator][searchItems][0][searchTerm]": "seminar",
        "pager[pageSize]": "5",
    }
    answer = requests.post(f"{api.server.url}/api_v3/service/elasticsearch_esearch/action/"
                           "searchEntry", data=body, timeout=10).json()
    assert answer["objectType"] == "KalturaESearchEntryResponse"
    assert [hit["object"]["id"] for hit in answer["objects"]] == ids_of(7)
