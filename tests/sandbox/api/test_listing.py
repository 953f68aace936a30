"""media.list and baseEntry.list through the real client: filters, defaults, order, pager, cap."""

from __future__ import annotations

import pytest
from emu_api import BASE_TIME, Api, make_entry
from KalturaClient.exceptions import KalturaException
from KalturaClient.Plugins.Core import (
    KalturaBaseEntryFilter,
    KalturaFilterPager,
    KalturaMediaEntryFilter,
)

from sandbox.kaltura.models import KalturaBackend
from sandbox.kaltura.models.listing import parse_pager, split_in, tag_words, term_matches
from sandbox.kaltura.records import EntryStatus


def ids(response) -> list[str]:
    return [e.id for e in response.objects]


@pytest.mark.parametrize(
    ("pager", "expected"),
    [
        ({}, (30, 1)),
        ({"pageSize": "501"}, (500, 1)),
        ({"pageSize": "-4", "pageIndex": "0"}, (0, 1)),
        ({"pageSize": "10", "pageIndex": "3"}, (10, 3)),
        ({"pageSize": "junk"}, (30, 1)),
    ],
)
def test_pager_defaults_and_clamps(pager: dict[str, str], expected: tuple[int, int]) -> None:
    assert parse_pager(pager) == expected


@pytest.mark.parametrize(
    ("term", "tags", "expected"),
    [
        ("archived_to_s3", "Archived_To_S3, flavors_deleted", True),
        ("archived", "archived_to_s3", False),  # whole word only
        ("archived*", "archived_to_s3", True),  # a trailing * is a prefix
        ("week", "physics, week 1", True),  # a word of a multi-word tag
        ("PHYSICS", "physics", True),
        ("", "physics", False),
    ],
)
def test_tag_terms_match_whole_words_case_insensitively(term: str, tags: str,
                                                        expected: bool) -> None:
    assert term_matches(term, tag_words(tags)) is expected


def test_in_lists_are_cut_at_500_values() -> None:
    assert len(split_in(",".join(str(i) for i in range(700)))) == 500


def test_default_filter_lists_only_ready_moderated_visible_entries(api: Api) -> None:
    b = api.backend
    ready = make_entry(b, 1)
    make_entry(b, 2, status=EntryStatus.NO_CONTENT)
    make_entry(b, 3, moderation_status=1)
    make_entry(b, 4, moderation_status=3)
    make_entry(b, 5, display_in_search=-1)
    make_entry(b, 6, status=EntryStatus.DELETED)
    result = api.client.media.list(KalturaMediaEntryFilter(), None)
    assert ids(result) == [ready.id]
    assert result.totalCount == 1


def test_explicit_status_replaces_the_ready_default(api: Api) -> None:
    make_entry(api.backend, 1)
    pending = make_entry(api.backend, 2, status=EntryStatus.NO_CONTENT)
    result = api.client.media.list(KalturaMediaEntryFilter(statusIn="7"), None)
    assert ids(result) == [pending.id]


def test_id_equal_skips_the_status_default(api: Api) -> None:
    pending = make_entry(api.backend, 2, status=EntryStatus.NO_CONTENT)
    assert ids(api.client.media.list(KalturaMediaEntryFilter(idEqual=pending.id), None)) == [
        pending.id
    ]
    assert ids(api.client.media.list(KalturaMediaEntryFilter(idIn=pending.id), None)) == []


def test_id_equal_never_shows_a_deleted_entry_unless_asked(api: Api) -> None:
    gone = make_entry(api.backend, 3, status=EntryStatus.DELETED)
    assert ids(api.client.media.list(KalturaMediaEntryFilter(idEqual=gone.id), None)) == []
    asked = KalturaMediaEntryFilter(idEqual=gone.id, statusEqual="3")
    assert ids(api.client.media.list(asked, None)) == [gone.id]


def test_id_in_shows_hidden_entries(api: Api) -> None:
    hidden = make_entry(api.backend, 5, display_in_search=-1)
    assert ids(api.client.media.list(KalturaMediaEntryFilter(idIn=hidden.id), None)) == [hidden.id]
    assert ids(api.client.media.list(KalturaMediaEntryFilter(idEqual=hidden.id), None)) == []


def test_id_not_in_excludes(api: Api) -> None:
    a, b = make_entry(api.backend, 1), make_entry(api.backend, 2)
    flt = KalturaMediaEntryFilter(idNotIn=a.id, orderBy="+createdAt")
    assert ids(api.client.media.list(flt, None)) == [b.id]


def test_order_by_fields_and_unknown_order_is_ignored(api: Api) -> None:
    b = api.backend
    e1 = make_entry(b, 1, plays=5, name="b")
    e2 = make_entry(b, 2, plays=9, name="a")
    e3 = make_entry(b, 3, plays=1, name="c")
    c = api.client
    assert ids(c.media.list(KalturaMediaEntryFilter(orderBy="+createdAt"), None)) == [
        e1.id, e2.id, e3.id]
    assert ids(c.media.list(KalturaMediaEntryFilter(orderBy="-createdAt"), None)) == [
        e3.id, e2.id, e1.id]
    assert ids(c.media.list(KalturaMediaEntryFilter(orderBy="-plays"), None)) == [
        e2.id, e1.id, e3.id]
    assert ids(c.media.list(KalturaMediaEntryFilter(orderBy="+name"), None)) == [
        e2.id, e1.id, e3.id]
    assert ids(c.media.list(KalturaMediaEntryFilter(orderBy="+bogus,+plays"), None)) == [
        e3.id, e1.id, e2.id]


def test_pager_pages_and_clamps_over_http(api: Api) -> None:
    for n in range(40):
        make_entry(api.backend, n)
    c = api.client
    flt = KalturaMediaEntryFilter(orderBy="+createdAt")
    default = c.media.list(flt, None)
    assert len(default.objects) == 30 and default.totalCount == 40
    second = c.media.list(flt, KalturaFilterPager(pageSize=15, pageIndex=3))
    assert ids(second) == [f"0_e{n:07d}" for n in range(30, 40)]
    assert len(c.media.list(flt, KalturaFilterPager(pageSize=900)).objects) == 40


def test_time_filters_absolute_and_relative(api: Api) -> None:
    b = api.backend
    now = b.now()
    old = make_entry(b, 1, created_at=now - 400 * 86400, last_played_at=now - 300 * 86400)
    recent = make_entry(b, 2, created_at=now - 10 * 86400, last_played_at=now - 86400)
    never = make_entry(b, 3, created_at=now - 500 * 86400)
    c = api.client
    rel = KalturaMediaEntryFilter(createdAtGreaterThanOrEqual=-30 * 86400)
    assert ids(c.media.list(rel, None)) == [recent.id]
    absolute = KalturaMediaEntryFilter(createdAtLessThanOrEqual=now - 450 * 86400)
    assert ids(c.media.list(absolute, None)) == [never.id]
    played = KalturaMediaEntryFilter(lastPlayedAtLessThanOrEqual=-180 * 86400)
    assert ids(c.media.list(played, None)) == [old.id]
    or_null = KalturaMediaEntryFilter(lastPlayedAtLessThanOrEqualOrNull=-180 * 86400,
                                      orderBy="+createdAt")
    assert ids(c.media.list(or_null, None)) == [never.id, old.id]
    since = KalturaMediaEntryFilter(lastPlayedAtGreaterThanOrEqual=now - 2 * 86400)
    assert ids(c.media.list(since, None)) == [recent.id]


def test_tag_filters(api: Api) -> None:
    b = api.backend
    both = make_entry(b, 1, tags="archived_to_s3, flavors_deleted")
    one = make_entry(b, 2, tags="archived_to_s3")
    make_entry(b, 3, tags="lecture")
    c = api.client
    order = "+createdAt"
    assert ids(c.media.list(KalturaMediaEntryFilter(tagsLike="ARCHIVED_TO_S3", orderBy=order),
                            None)) == [both.id, one.id]
    assert ids(c.media.list(KalturaMediaEntryFilter(
        tagsMultiLikeAnd="archived_to_s3,flavors_deleted"), None)) == [both.id]
    assert ids(c.media.list(KalturaMediaEntryFilter(
        tagsMultiLikeOr="flavors_deleted,nothing"), None)) == [both.id]
    assert ids(c.media.list(KalturaMediaEntryFilter(tagsLike="flavors*"), None)) == [both.id]
    assert ids(c.media.list(KalturaMediaEntryFilter(tagsLike="archived"), None)) == []


def test_user_media_type_duration_and_category_filters(api: Api) -> None:
    b = api.backend
    a = make_entry(b, 1, user_id="alice", categories_ids="11,12",
                   categories="Lectures,Lectures>Physics")
    z = make_entry(b, 2, user_id="bob", media_type=5, duration=600, categories_ids="13",
                   categories="Events")
    c = api.client
    assert ids(c.media.list(KalturaMediaEntryFilter(userIdEqual="alice"), None)) == [a.id]
    assert ids(c.media.list(KalturaMediaEntryFilter(userIdIn="bob,carol"), None)) == [z.id]
    assert ids(c.media.list(KalturaMediaEntryFilter(mediaTypeEqual=5), None)) == [z.id]
    assert ids(c.media.list(KalturaMediaEntryFilter(durationGreaterThan=100), None)) == [z.id]
    assert ids(c.media.list(KalturaMediaEntryFilter(categoriesIdsMatchOr="12,99"), None)) == [a.id]
    assert ids(c.media.list(KalturaMediaEntryFilter(categoriesIdsMatchAnd="11,12"), None)) == [
        a.id]
    assert ids(c.media.list(KalturaMediaEntryFilter(categoriesIdsNotContains="11"), None)) == [
        z.id]
    assert ids(c.media.list(KalturaMediaEntryFilter(categoryAncestorIdIn="11"), None)) == [a.id]


def test_base_entry_list_returns_media_entries_in_a_base_list(api: Api) -> None:
    make_entry(api.backend, 1)
    result = api.client.baseEntry.list(KalturaBaseEntryFilter(), None)
    assert type(result).__name__ == "KalturaBaseEntryListResponse"
    assert type(result.objects[0]).__name__ == "KalturaMediaEntry"


@pytest.fixture
def big(backend: KalturaBackend) -> KalturaBackend:
    for n in range(10_500):
        make_entry(backend, n, created_at=BASE_TIME + n // 3)  # three entries per second
    return backend


def test_the_10000_cap_refuses_deep_pages_but_counts_everything(api: Api, big: KalturaBackend
                                                                 ) -> None:
    c = api.client
    flt = KalturaMediaEntryFilter(orderBy="+createdAt")
    last = c.media.list(flt, KalturaFilterPager(pageSize=500, pageIndex=20))
    assert last.totalCount == 10_500
    assert len(last.objects) == 500
    with pytest.raises(KalturaException) as err:
        c.media.list(flt, KalturaFilterPager(pageSize=500, pageIndex=21))
    assert err.value.code == "QUERY_EXCEEDED_MAX_MATCHES_ALLOWED"
    straddling = c.media.list(flt, KalturaFilterPager(pageSize=300, pageIndex=34))
    assert len(straddling.objects) == 100  # rows 9900..9999 only


def test_created_at_cursor_walks_past_the_cap(api: Api, big: KalturaBackend) -> None:
    c = api.client
    seen: set[str] = set()
    cursor = 0
    while True:
        flt = KalturaMediaEntryFilter(orderBy="+createdAt", createdAtGreaterThanOrEqual=cursor,
                                      idNotIn=None)
        page = c.media.list(flt, KalturaFilterPager(pageSize=500))
        fresh = [e for e in page.objects if e.id not in seen]
        if not fresh:
            break
        seen.update(e.id for e in fresh)
        cursor = page.objects[-1].createdAt
    assert len(seen) == 10_500


def test_a_cursor_walk_sees_every_change_made_between_its_pages(api: Api, big: KalturaBackend
                                                                 ) -> None:
    """Later pages of a walk are cut from a cached whole-catalogue search; a change to any entry,
    or a new one, between two pages must show in the next page as if nothing were cached."""
    c = api.client
    for n in range(0, 10_500, 2):
        big.get_entry(f"0_e{n:07d}").tags = "physics"
    seen: list[str] = []
    totals: list[int] = []
    cursors: list[tuple[int, int]] = []  # (createdAt bound, ids sent in idNotIn)
    cursor, boundary = 0, ""
    while True:  # as karchive walks: the boundary second's ids already seen go in idNotIn
        flt = KalturaMediaEntryFilter(orderBy="+createdAt", createdAtGreaterThanOrEqual=cursor,
                                      tagsMultiLikeOr="physics", idNotIn=boundary or None)
        page = c.media.list(flt, KalturaFilterPager(pageSize=500))
        if not page.objects:
            break
        assert not {e.id for e in page.objects} & set(seen)
        seen.extend(e.id for e in page.objects)
        totals.append(page.totalCount)
        cursors.append((cursor, len(boundary.split(",")) if boundary else 0))
        cursor = page.objects[-1].createdAt
        boundary = ",".join(e.id for e in page.objects if e.createdAt == cursor)
        if len(totals) == 2:  # ahead of the cursor: one entry leaves, one joins, one is new
            big.get_entry("0_e0010000").tags = ""
            big.get_entry("0_e0010001").tags = "physics"
            make_entry(big, 20_000, created_at=BASE_TIME + 4_000, tags="physics")
    expected = {f"0_e{n:07d}" for n in range(0, 10_500, 2)} - {"0_e0010000"}
    expected |= {"0_e0010001", "0_e0020000"}
    assert set(seen) == expected
    assert len(seen) == len(expected)
    # totalCount counts what matches from the cursor on, after the change as before it.
    assert totals[0] == 5_250
    tagged = [e.created_at for e in big.all_entries() if e.tags == "physics"]
    assert totals[2:] == [sum(1 for t in tagged if t >= low) - left_out
                          for low, left_out in cursors[2:]]


def test_cached_and_scanned_searches_agree(backend: KalturaBackend) -> None:
    """The whole-catalogue search a wide filter caches cuts to the same matches, in the same
    order, as scanning the createdAt range alone, before and after entries change."""
    for n in range(3_000):
        make_entry(backend, n, created_at=BASE_TIME + n // 2,
                   tags="physics" if n % 3 else "chemistry", user_id=f"u{n % 7}")
    filters = [{"tagsMultiLikeOr": "physics"}, {"userIdEqual": "u3", "idNotIn": "0_e0001500"},
               {"tagsMultiLikeOr": "chemistry", "createdAtLessThanOrEqual": str(BASE_TIME + 900)}]
    for step in range(3):
        for f in filters:
            for low in (None, BASE_TIME + 10, BASE_TIME + 1_200):
                flt = dict(f) if low is None else {**f, "createdAtGreaterThanOrEqual": str(low)}
                high = int(flt.get("createdAtLessThanOrEqual", 0)) or None
                scanned = backend._compile(flt, by_id=False).run(backend.created_range(low, high))
                assert backend._match(flt) == scanned
        backend.get_entry(f"0_e{step * 5:07d}").tags = "chemistry"
        backend.get_entry(f"0_e{step * 5 + 1:07d}").user_id = "u3"
