"""Observation against the sandbox: the real KalturaClient and boto3 over loopback HTTP.

Expected values come from the emulator's own records and the catalogue's summary, read directly,
never from the code under test.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from KalturaClient.Plugins.Core import KalturaMediaEntry
from test_observe_support import admin, aws_env, calls, observed, write_policy

from controller.adapters.kaltura.read import PAGE_SIZE, flavors_for, iter_entries
from controller.adapters.kaltura.session import KalturaSession
from controller.adapters.storage.s3 import make_s3_client
from controller.errors import KarchiveError, PermanentError, TransientError
from controller.runtime.metrics import CallCounter
from policies.loader import load_policy
from policies.observed import TAG_ARCHIVED, TAG_REPLACED
from policies.state import (
    EMPTIED,
    NOT_ARCHIVED,
    PLACEHOLDER_OK,
    REPLACED_WITHOUT_COPY,
    UNKNOWN_CONTENT,
    UNVERIFIED_COPY,
    ObservedState,
    classify,
)
from sandbox.catalogue import PLACEHOLDER_CONTENT, LegacyKind
from sandbox.kaltura.records import FlavorAsset, MediaEntry

DELETED = 3


def _visible(entry: MediaEntry) -> bool:
    # What media.list shows: not deleted, not a replacement's temp entry, not held by moderation.
    return (entry.status != DELETED and entry.display_in_search >= 0
            and entry.moderation_status not in (1, 3))


def _tags(text: str) -> frozenset[str]:
    return frozenset(t.strip().lower() for t in text.split(",") if t.strip())


@pytest.fixture
def policy(tmp_path, sandbox, monkeypatch):
    aws_env(monkeypatch, sandbox)
    return load_policy(write_policy(tmp_path, sandbox))


def _observe(sandbox, policy, counter=None):
    counter = counter or CallCounter()
    return observed(policy, counter), counter


def test_observation_matches_the_catalogue_entry_by_entry(sandbox, policy):
    observation, _ = _observe(sandbox, policy)
    backend = sandbox.backend
    expected = {e.id: e for e in backend.all_entries() if _visible(e)}
    seen = {e.entry_id: e for e in observation.entries}
    assert len(seen) == len(observation.entries)  # nobody twice
    assert seen.keys() == expected.keys()
    legacy_objects = {o.key: o for o in sandbox.summary.objects}
    for entry_id, got in seen.items():
        record = expected[entry_id]
        assert got.tags == _tags(record.tags)
        assert got.created_at == record.created_at
        assert got.status == record.status
        assert got.plays == record.plays
        assert got.last_played_at == record.last_played_at
        flavors: list[FlavorAsset] = [
            f for f in backend.flavors_by_entry.get(entry_id, ()) if f.status != DELETED]
        assert {(f.flavor_id, f.size_bytes, f.is_original) for f in got.flavors} == {
            (f.id, f.size_in_bytes, bool(f.is_original)) for f in flavors}
        obj = legacy_objects.get(entry_id)
        if obj is None:
            assert got.archive is None
        else:
            assert got.archive is not None
            assert (got.archive.key, got.archive.size_bytes, got.archive.layout) == (
                entry_id, obj.content.size, "legacy")
            assert got.archive.storage_class == obj.storage_class


def test_princeton_tagged_legacy_entries_are_recognised(sandbox, policy):
    # The old tool's placeholder size (in the policy) proves its placeholders, with its tags.
    assert policy.legacy_placeholder_size == PLACEHOLDER_CONTENT.size
    observation, _ = _observe(sandbox, policy)
    by_id = {e.entry_id: e for e in observation.entries}
    summary = sandbox.summary
    # The catalogue's truth, kind by kind, against the pure classification of what was observed.
    # A copy the old tool left proves nothing until karchive verifies it: not "archived" yet.
    expected = {
        LegacyKind.ARCHIVED: (ObservedState.ORIGINAL, UNVERIFIED_COPY),
        LegacyKind.PLACEHOLDER: (ObservedState.PLACEHOLDER, PLACEHOLDER_OK),
        LegacyKind.DELETED_WITHOUT_ARCHIVED: (ObservedState.UNHEALTHY, REPLACED_WITHOUT_COPY),
        LegacyKind.SIZE_MISMATCH: (ObservedState.ORIGINAL, UNVERIFIED_COPY),
        LegacyKind.OBJECT_WITHOUT_TAG: (ObservedState.ORIGINAL, UNVERIFIED_COPY),
        LegacyKind.TAG_WITHOUT_OBJECT: (ObservedState.ORIGINAL, NOT_ARCHIVED),
        LegacyKind.EMPTIED_BY_REPLACE: (ObservedState.UNHEALTHY, EMPTIED),
        LegacyKind.EMPTIED_BY_RESTORE: (ObservedState.UNHEALTHY, EMPTIED),
    }
    checked = 0
    for kind, (state, reason) in expected.items():
        for entry_id in summary.legacy_ids(kind):
            entry = by_id.get(entry_id)
            if entry is None:
                continue  # hidden (moderation): not observed at all
            found = classify(entry, observation.placeholder_size)
            assert (found.state, found.reason) == (state, reason), (kind, entry_id)
            assert found.recoverable is (reason == EMPTIED)
            checked += 1
    assert checked >= 8
    placeholders = summary.legacy_ids(LegacyKind.PLACEHOLDER)
    assert all({TAG_ARCHIVED, TAG_REPLACED} <= by_id[i].tags for i in placeholders if i in by_id)


def test_princeton_placeholders_are_not_taken_on_their_tags_alone(sandbox, policy):
    # Without the old tool's placeholder size nothing proves what the content is: reported.
    observation, _ = _observe(sandbox, policy.model_copy(update={"legacy_placeholder_size": None}))
    by_id = {e.entry_id: e for e in observation.entries}
    found = [classify(by_id[i], observation.placeholder_size)
             for i in sandbox.summary.legacy_ids(LegacyKind.PLACEHOLDER) if i in by_id]
    assert found
    assert {(f.state, f.reason) for f in found} == {(ObservedState.UNHEALTHY, UNKNOWN_CONTENT)}


def test_observation_costs_a_few_calls_per_thousand_entries(sandbox, policy):
    before = calls(sandbox)
    observation, counter = _observe(sandbox, policy)
    after = calls(sandbox)
    n = len(observation.entries)
    http = (after.get("media.list", 0) - before.get("media.list", 0)
            + after.get("multirequest", 0) - before.get("multirequest", 0)
            + after.get("session.start", 0) - before.get("session.start", 0))
    assert http == counter.kaltura_total
    assert counter.kaltura_total <= n / 500 + 4
    assert after.get("flavorasset.list", 0) - before.get("flavorasset.list", 0) <= n / 50
    assert counter.s3.get(("ListObjectsV2", "ok"), 0) <= 2 + len(sandbox.summary.objects) / 1000


def test_walk_past_ten_thousand_is_complete_while_entries_are_tagged(make_sandbox,
                                                                     kaltura_client_for):
    sb = make_sandbox(entries=12_000, seed=7)
    client = kaltura_client_for(sb)
    visible = [e.id for e in sb.backend.all_entries() if _visible(e)]
    assert len(visible) > 10_000
    stop = threading.Event()
    tagged: list[str] = []

    def tag_while_walking() -> None:
        # Editing changes updatedAt (and tags), never createdAt: the cursor must not care.
        for entry_id in visible[::37]:
            if stop.is_set():
                return
            update = KalturaMediaEntry()
            update.tags = "edited during walk"
            client.media.update(entry_id, update)
            tagged.append(entry_id)

    policy_settings = _settings(sb)
    session = KalturaSession(policy_settings)
    editor = threading.Thread(target=tag_while_walking)
    editor.start()
    try:
        ids = [e.entry_id for e in iter_entries(session)]
    finally:
        stop.set()
        editor.join()
    assert tagged  # the walk really overlapped with edits
    assert len(ids) == len(set(ids))
    assert set(ids) == set(visible)


def test_a_second_holding_more_than_a_page_does_not_pin_the_cursor(make_sandbox):
    sb = make_sandbox(entries=300, seed=3)
    backend = sb.backend
    second = max(e.created_at for e in backend.all_entries()) - 3600
    crowd = [MediaEntry(id=f"0_crowd{i:03d}", partner_id=backend.partner.id, name="crowd",
                        created_at=second, updated_at=second) for i in range(2 * PAGE_SIZE + 37)]
    for entry in crowd:
        backend.insert(entry)
    counter = CallCounter()
    session = KalturaSession(_settings(sb), metrics=counter)
    ids = [e.entry_id for e in iter_entries(session)]
    assert len(ids) == len(set(ids))
    assert set(ids) == {e.id for e in backend.all_entries() if _visible(e)}
    assert counter.kaltura_total < 20


def test_an_expired_session_is_renewed_without_failing_the_walk(make_sandbox):
    sb = make_sandbox(entries=200, seed=5)
    session = KalturaSession(_settings(sb, session_expiry=120))
    assert len(list(iter_entries(session))) > 0
    admin(sb, "clock", {"advance": 600})  # the server now sees our KS as expired
    assert len(list(iter_entries(session))) > 0
    assert session.renewals == 2


def test_a_session_is_renewed_before_it_expires_by_our_clock(make_sandbox):
    sb = make_sandbox(entries=50, seed=5)
    now = [0.0]
    session = KalturaSession(_settings(sb, session_expiry=100), clock=lambda: now[0])
    list(iter_entries(session))
    now[0] = 81.0  # past 80 % of its life
    list(iter_entries(session))
    assert session.renewals == 2


def test_a_wrong_secret_is_one_clear_error_without_the_secret(make_sandbox):
    sb = make_sandbox(entries=10, seed=5)
    settings = _settings(sb).model_copy(update={"admin_secret": _secret("not-the-secret")})
    with pytest.raises(PermanentError) as caught:
        list(iter_entries(KalturaSession(settings)))
    assert "admin_secret" in str(caught.value)
    assert "not-the-secret" not in str(caught.value)


def test_an_unreachable_kaltura_is_transient_after_retries(make_sandbox):
    sb = make_sandbox(entries=10, seed=5)
    settings = _settings(sb).model_copy(update={"service_url": "http://127.0.0.1:9"})
    slept: list[float] = []
    session = KalturaSession(settings, max_attempts=3, sleep=slept.append)
    with pytest.raises(TransientError):
        list(iter_entries(session))
    assert len(slept) == 2  # backed off between attempts, never a tight loop


def test_a_missing_bucket_is_an_error_not_an_empty_archive(sandbox, tmp_path, monkeypatch):
    aws_env(monkeypatch, sandbox)
    policy = load_policy(write_policy(tmp_path, sandbox, bucket="no-such-bucket-here"))
    with pytest.raises(PermanentError, match="does not exist"):
        _observe(sandbox, policy)


def test_an_unreachable_s3_is_an_error_not_an_empty_archive(sandbox, tmp_path, monkeypatch):
    aws_env(monkeypatch, sandbox)
    policy = load_policy(write_policy(tmp_path, sandbox, endpoint="http://127.0.0.1:9"))
    s3 = make_s3_client(policy.storage, max_attempts=1)
    with pytest.raises(KarchiveError):
        observed(policy, s3_client=s3)


def test_an_entry_folder_copy_wins_over_a_legacy_object_and_keeps_its_flavor_id(
    sandbox, s3, policy
):
    entry_id = sandbox.summary.legacy_ids(LegacyKind.ARCHIVED)[0]
    original = next(f for f in sandbox.backend.flavors_by_entry[entry_id] if f.is_original)
    key = f"karchive/{entry_id}/original/{original.id}.{original.file_ext}"
    s3.put_object(Bucket=sandbox.bucket, Key=key, Body=b"x" * 10, StorageClass="DEEP_ARCHIVE")
    try:
        observation, _ = _observe(sandbox, policy)
    finally:
        s3.delete_object(Bucket=sandbox.bucket, Key=key)
    copy = next(e for e in observation.entries if e.entry_id == entry_id).archive
    assert copy is not None
    assert (copy.key, copy.layout, copy.flavor_id, copy.storage_class, copy.size_bytes) == (
        key, "entry-folder", original.id, "DEEP_ARCHIVE", 10)


def _secret(text):
    from pydantic import SecretStr

    return SecretStr(text)


def _settings(sb, **extra):
    from policies.schema import KalturaSettings

    env = sb.env()
    return KalturaSettings(service_url=env["KALTURA_SERVICE_URL"],
                           partner_id=int(env["KALTURA_PARTNER_ID"]),
                           admin_secret=env["KALTURA_ADMIN_SECRET"],
                           user_id=env["KALTURA_USER_ID"], **extra)


def test_copies_of_observed_entries_stay_frozen_values(sandbox, policy):
    observation, _ = _observe(sandbox, policy)
    entry = observation.entries[0]
    with pytest.raises(AttributeError):
        entry.tags = frozenset()  # type: ignore[misc]
    assert replace(entry, plays=entry.plays + 1).plays == entry.plays + 1


def _flavor_truth(sb, ids):
    return {i: {f.id for f in sb.backend.flavors_by_entry.get(i, ()) if f.status != DELETED}
            for i in ids}


def test_a_batch_with_more_flavors_than_a_page_is_paged(sandbox, policy):
    ids = [e.id for e in sandbox.backend.all_entries() if _visible(e)][:1200]
    counter = CallCounter()
    session = KalturaSession(policy.kaltura, metrics=counter)
    # Expecting one flavor an entry: batches of 400 entries, ~1,600 flavors each, 4 pages.
    found = flavors_for(session, ids, expected_per_entry=1.0)
    assert {i: {f.flavor_id for f in fl} for i, fl in found.items()} == _flavor_truth(sandbox, ids)
    assert counter.kaltura.get(("multirequest", "ok"), 0) >= 2  # the extra pages went later


def test_throttled_flavor_batches_are_paced_and_sent_again(make_sandbox):
    sb = make_sandbox(entries=1000, seed=9)
    admin(sb, "throttle", {"flavorasset.list": [4, 1]})
    ids = [e.id for e in sb.backend.all_entries() if _visible(e)]
    counter = CallCounter()
    session = KalturaSession(_settings(sb), metrics=counter)
    found = flavors_for(session, ids)
    assert {i: {f.flavor_id for f in fl} for i, fl in found.items()} == _flavor_truth(sb, ids)
    blocked = counter.kaltura.get(("flavorasset.list", "multirequest_rate_limited"), 0)
    assert blocked > 0
    # A refused batch is sent again once Kaltura's fixed window is over, so it lands in a fresh
    # one: no batch is refused twice (quick retries would spend the window's allowance on more
    # refusals: five of them can all fall inside one window).
    answered = calls(sb).get("flavorasset.list", 0) - blocked
    assert blocked <= answered


def test_a_refused_call_is_sent_again_in_a_fresh_window_not_five_times_in_one(make_sandbox):
    # Kaltura's windows are fixed and a refusal does not extend them; the policy knows no budget
    # for media.get, so quick retries (even paced ones) would all fall into the one window.
    sb = make_sandbox(entries=20, seed=9)
    admin(sb, "throttle", {"media.get": [2, 10]})
    entry_id = next(e.id for e in sb.backend.all_entries() if _visible(e))
    session = KalturaSession(_settings(sb))
    before = calls(sb).get("media.get", 0)
    got = [session.call("media.get", lambda c: c.media.get(entry_id)).id for _ in range(3)]
    assert got == [entry_id] * 3
    assert calls(sb).get("media.get", 0) - before == 4  # one refusal, then the fresh window


RESTORE_ALL = """\
rules:
  - name: everything-back
    state: archived
"""


def emptied(sandbox) -> set[str]:
    summary = sandbox.summary
    return {*summary.legacy_ids(LegacyKind.EMPTIED_BY_REPLACE),
            *summary.legacy_ids(LegacyKind.EMPTIED_BY_RESTORE)}


def test_restore_status_comes_from_the_listing_or_one_head_per_deciding_copy(
        sandbox, tmp_path, monkeypatch):
    # Every legacy placeholder is wanted back, so its copy's restore status decides a thaw.
    aws_env(monkeypatch, sandbox)
    listing_policy = load_policy(write_policy(tmp_path, sandbox, rules=RESTORE_ALL))
    path = write_policy(tmp_path, sandbox, rules=RESTORE_ALL, name="head.yaml")
    path.write_text(path.read_text().replace("  prefix: karchive/\n",
                                             "  prefix: karchive/\n  restore_status: head\n"))
    head_policy = load_policy(path)
    by_listing, listed = _observe(sandbox, listing_policy)
    by_head, headed = _observe(sandbox, head_policy)
    # ... and so does that of every emptied entry (a recover thaws it first).
    cold = [e for e in by_listing.entries if e.archive is not None
            and e.archive.storage_class in ("GLACIER", "DEEP_ARCHIVE")
            and ((TAG_REPLACED in e.tags and e.status == 2) or e.entry_id in emptied(sandbox))]
    assert cold, "the catalogue has Princeton placeholders in a cold class"
    assert by_listing.heads == 0 and listed.s3.get(("HeadObject", "ok"), 0) == 0
    assert by_head.heads >= len(cold) == headed.s3.get(("HeadObject", "ok"), 0)
    restore = {e.entry_id: e.archive.restore for e in by_listing.entries if e.archive}
    assert restore == {e.entry_id: e.archive.restore for e in by_head.entries if e.archive}


def test_a_saved_plans_entries_are_observed_in_id_batches_against_one_bucket_listing(
        sandbox, policy):
    # A saved plan names its entries: more than one idIn batch (500) of them here.
    whole, whole_counter = _observe(sandbox, policy)
    ids = [e.entry_id for e in whole.entries][:700]
    counter = CallCounter()
    some = observed(policy, counter, entry_ids=ids)
    wanted = set(ids)
    assert {e.entry_id: e for e in some.entries} == {e.entry_id: e for e in whole.entries
                                                     if e.entry_id in wanted}
    # The bucket is listed once for the whole plan, not once per batch of ids.
    listings = counter.s3.get(("ListObjectsV2", "ok"), 0)
    assert listings == whole_counter.s3.get(("ListObjectsV2", "ok"), 0)


def test_the_pipeline_spills_a_big_plan_and_it_reads_the_same(sandbox, policy, monkeypatch):
    from controller.runtime import spill
    from policies.plan import diff

    monkeypatch.setattr(spill, "IN_MEMORY", 10)
    monkeypatch.setattr(spill, "_BATCH", 50)
    seen = observed(policy)
    assert isinstance(seen.plan.items, spill.SpilledItems)
    assert len(seen.plan.items) > 100  # several batches on disk
    # The pure diff of the same entries, in memory, is the same plan.
    again = diff(seen.entries, policy, seen.plan.planned_at, seen.placeholder_size)
    assert isinstance(again.items, tuple)
    assert seen.plan.render() == again.render()
    assert seen.plan.to_json() == again.to_json()
