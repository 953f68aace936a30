"""Pure parts of the observation adapters: key layout, restore status, pacing, translation."""

from __future__ import annotations

import io

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from controller.adapters.kaltura.session import Pacer
from controller.adapters.storage.inventory import parse_restore_header
from controller.adapters.storage.s3 import translate
from controller.errors import NotFound, PermanentError, TransientError
from controller.runtime.progress import Progress
from policies.durations import Rate
from policies.layout import (
    ENTRY_FOLDER,
    LEGACY,
    KeyKind,
    asset_key,
    legacy_key,
    manifest_key,
    original_key,
    parse_key,
)
from policies.observed import RestoreStatus, restore_status


@pytest.mark.parametrize(
    ("key", "kind", "layout", "asset"),
    [
        (original_key("arc/", "0_abcd1234", "0_flav0001", "mp4"), KeyKind.ORIGINAL, ENTRY_FOLDER,
         "0_flav0001"),
        (manifest_key("arc/", "0_abcd1234"), KeyKind.MANIFEST, ENTRY_FOLDER, None),
        (asset_key("arc/", "0_abcd1234", KeyKind.CAPTION, "0_capt0001", "srt"), KeyKind.CAPTION,
         ENTRY_FOLDER, "0_capt0001"),
        (legacy_key("0_abcd1234"), KeyKind.ORIGINAL, LEGACY, None),
    ],
)
def test_keys_built_by_the_layout_parse_back_to_the_same_entry(key, kind, layout, asset):
    parsed = parse_key(key, "arc/")
    assert parsed is not None
    assert (parsed.entry_id, parsed.kind, parsed.layout, parsed.asset_id) == (
        "0_abcd1234", kind, layout, asset)


@pytest.mark.parametrize("key", ["log/2026/01/01/x.jsonl", "arc/lease", "arc/0_abcd1234/other/x",
                                 "other/0_abcd1234/original/0_f.mp4", "0_ABCD1234"])
def test_keys_of_no_entry_archive_are_ignored(key):
    assert parse_key(key, "arc/") is None


@pytest.mark.parametrize(
    ("storage_class", "in_progress", "expiry", "expected"),
    [
        ("STANDARD", None, None, RestoreStatus.READABLE),
        ("GLACIER_IR", None, None, RestoreStatus.READABLE),
        ("GLACIER", None, None, RestoreStatus.FROZEN),
        ("DEEP_ARCHIVE", True, None, RestoreStatus.THAWING),
        ("GLACIER", False, "2026-01-01T00:00:00Z", RestoreStatus.THAWED),
    ],
)
def test_storage_class_and_restore_state_map_to_restore_status(
    storage_class, in_progress, expiry, expected
):
    assert restore_status(storage_class, bool(in_progress), bool(expiry)) is expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, (False, None)),
        ('ongoing-request="true"', (True, None)),
        ('ongoing-request="false", expiry-date="Fri, 23 Dec 2026 00:00:00 GMT"',
         (False, "Fri, 23 Dec 2026 00:00:00 GMT")),
    ],
)
def test_restore_header_is_read(header, expected):
    assert parse_restore_header(header) == expected


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pacer_lets_a_window_burst_through_then_spaces_calls():
    t = FakeTime()
    pacer = Pacer(lambda s, a: Rate(5, 10) if (s, a) == ("media", "delete") else None,
                  clock=t.clock, sleep=t.sleep)
    for _ in range(5):
        pacer.acquire("media", "delete")
    assert t.slept == []
    pacer.acquire("media", "delete")
    assert t.slept == [pytest.approx(2.0)]  # 5 per 10 s: one token every 2 s
    pacer.acquire("media", "list")  # an unpaced class never waits
    assert len(t.slept) == 1


def test_pacer_halves_the_rate_after_action_blocked_then_recovers():
    t = FakeTime()
    pacer = Pacer(lambda s, a: Rate(10, 10), clock=t.clock, sleep=t.sleep, slow_for=60)
    pacer.penalise("media", "delete")
    pacer.acquire("media", "delete")
    assert t.slept[-1] == pytest.approx(2.0)  # half of 1/s: a token every 2 s
    t.now += 120  # the slow period is over
    t.slept.clear()
    pacer.acquire("media", "delete")
    pacer.acquire("media", "delete")
    assert t.slept == []


def test_pacer_learns_a_budget_for_an_unpaced_class_that_gets_blocked():
    t = FakeTime()
    pacer = Pacer(lambda s, a: None, clock=t.clock, sleep=t.sleep)
    pacer.penalise("baseentry", "delete")
    pacer.acquire("baseentry", "delete")
    assert t.slept and t.slept[0] > 0  # never a tight retry loop


def test_a_shard_learns_its_share_of_the_pace_for_an_unpaced_class():
    # Three shards spend the partner's budget together: each learns a third of Kaltura's pace.
    from controller.adapters.kaltura.session import KalturaSession
    from policies.schema import KalturaSettings

    settings = KalturaSettings(service_url="http://k", partner_id=1, admin_secret="s")
    waits = []
    for share in (1, 3):
        t = FakeTime()
        session = KalturaSession(settings, share=share, clock=t.clock, sleep=t.sleep)
        session.pacer.penalise("media", "update")  # no budget for it in the policy
        session.pacer.acquire("media", "update")
        waits.append(sum(t.slept))
    assert waits[0] == pytest.approx(10 / 35 * 2)  # 35 per 10 s, halved by the refusal
    assert waits[1] == pytest.approx(3 * waits[0])


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "ListObjectsV2")


@pytest.mark.parametrize(
    ("exc", "key", "expected"),
    [
        (_client_error("NoSuchKey", 404), "k", NotFound),
        (_client_error("404", 404), "k", NotFound),
        (_client_error("NoSuchBucket", 404), None, PermanentError),
        (_client_error("NoSuchBucket", 404), "k", PermanentError),
        (_client_error("AccessDenied", 403), None, PermanentError),
        (_client_error("403", 403), "k", PermanentError),
        (_client_error("SlowDown", 503), None, TransientError),
        (_client_error("InternalError", 500), "k", TransientError),
        (EndpointConnectionError(endpoint_url="http://x"), None, TransientError),
    ],
)
def test_only_a_missing_key_reads_as_absent(exc, key, expected):
    error = translate(exc, "op", "bucket", key)
    assert type(error) is expected


def test_progress_prints_periodic_lines_when_not_a_terminal():
    t = FakeTime()
    out = io.StringIO()
    progress = Progress("observed", stream=out, tty=False, every=5, clock=t.clock)
    progress.total(1000)
    progress.advance(100)
    t.now += 6
    progress.advance(100)
    progress.finish()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("observed 200 of 1,000 entries (20%")
    assert lines[-1].startswith("observed 200 of 1,000")
    assert "\r" not in out.getvalue()


def test_progress_draws_a_bar_on_a_terminal():
    t = FakeTime()
    out = io.StringIO()
    progress = Progress("observed", stream=out, tty=True, clock=t.clock)
    progress.total(10)
    t.now += 1
    progress.advance(5)
    progress.finish()
    assert "\r[###############---------------] observed 5 of 10" in out.getvalue()
