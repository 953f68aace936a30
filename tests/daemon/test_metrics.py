"""The metrics module: names, units, labels without entry ids, and the no-op twin."""

from __future__ import annotations

import inspect

import pytest

from controller.runtime.metrics import Metrics, NullMetrics, RecordingMetrics
from policies.counts import DESIRED, STATES, Census

PUBLIC = sorted(
    name for name, member in inspect.getmembers(Metrics, inspect.isfunction)
    if not name.startswith("_") and name not in ("exposition", "value")
)


def test_every_metric_carries_the_prefix_and_counters_end_in_total() -> None:
    metrics = Metrics()
    for family in metrics.registry.collect():
        assert family.name.startswith("karchive_")
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)


@pytest.mark.parametrize("method", PUBLIC)
def test_null_and_recording_metrics_offer_every_method_of_the_real_one(method: str) -> None:
    real = inspect.signature(getattr(Metrics, method))
    assert inspect.signature(getattr(NullMetrics, method)) == real
    recording = RecordingMetrics()
    args = [1 if p.annotation in ("int", "float") else True if p.annotation == "bool" else "x"
            for p in list(real.parameters.values())[1:]]
    getattr(recording, method)(*args)
    assert recording.of(method) == [tuple(args)]


def test_counters_count_by_operation_and_outcome() -> None:
    m = Metrics()
    m.kaltura_call("media.list", "ok")
    m.kaltura_call("media.list", "ok")
    m.s3_call("PutObject", "error")
    m.transition("archive", "ok")
    m.error("kaltura_unreachable")
    m.bytes_archived(1000)
    m.bytes_restored(10)
    m.reload_failed()
    ok = {"operation": "media.list", "outcome": "ok"}
    assert m.value("karchive_kaltura_calls_total", ok) == 2
    assert m.value("karchive_s3_calls_total", {"operation": "PutObject", "outcome": "error"}) == 1
    assert m.value("karchive_transitions_total", {"action": "archive", "result": "ok"}) == 1
    assert m.value("karchive_errors_total", {"reason": "kaltura_unreachable"}) == 1
    assert m.value("karchive_archived_bytes_total") == 1000
    assert m.value("karchive_restored_bytes_total") == 10
    assert m.value("karchive_policy_reload_failures_total") == 1


def census(states: dict[str, int], desired: dict[str, int], **counts: int) -> Census:
    by_state = {state: states.get(state, 0) for state in STATES}
    by_desired = {state: desired.get(state, 0) for state in DESIRED}
    return Census(sum(states.values()), by_state, by_desired, **counts)


def test_the_census_is_exported_as_counted_and_a_state_that_empties_reads_zero() -> None:
    m = Metrics()
    m.observed(census({"original": 5, "archived": 2, "unhealthy": 3}, {"archived": 10},
                      unhealthy_managed=1, unhealthy_unmanaged=2, thaws_in_progress=4))
    assert m.value("karchive_entries_unhealthy", {"scope": "managed"}) == 1
    assert m.value("karchive_entries_unhealthy", {"scope": "unmanaged"}) == 2
    assert m.value("karchive_thaws_in_progress") == 4
    assert m.value("karchive_entries_observed", {"state": "restoring"}) == 0
    m.observed(census({"original": 3}, {"archived": 3}))
    assert m.value("karchive_entries_observed", {"state": "original"}) == 3
    assert m.value("karchive_entries_observed", {"state": "archived"}) == 0
    assert m.value("karchive_entries_unhealthy", {"scope": "unmanaged"}) == 0
    assert m.value("karchive_thaws_in_progress") == 0
    m.pending({"archive": 4})
    m.pending({})
    assert m.value("karchive_pending_changes", {"action": "archive"}) == 0


def test_a_successful_cycle_sets_the_last_success_time_and_a_failed_one_does_not() -> None:
    m = Metrics()
    m.cycle(2.0, ok=False)
    assert m.value("karchive_last_successful_cycle_timestamp_seconds") == 0
    m.cycle(3.0, ok=True)
    assert (m.value("karchive_last_successful_cycle_timestamp_seconds") or 0) > 0
    assert m.value("karchive_cycle_duration_seconds_count") == 2
    assert m.value("karchive_cycles_total", {"result": "failed"}) == 1


def test_restore_wait_buckets_reach_two_days_and_copy_buckets_cover_minutes() -> None:
    m = Metrics()
    m.restore_wait(47 * 3600)
    m.copy_duration(240)
    assert m.value("karchive_restore_wait_seconds_bucket", {"le": "172800.0"}) == 1
    assert m.value("karchive_restore_wait_seconds_bucket", {"le": "86400.0"}) == 0
    assert m.value("karchive_copy_duration_seconds_bucket", {"le": "300.0"}) == 1
    assert m.value("karchive_copy_duration_seconds_bucket", {"le": "120.0"}) == 0


def test_gauges_for_paused_and_leader() -> None:
    m = Metrics()
    m.paused(True)
    m.leader(False)
    assert m.value("karchive_paused") == 1
    assert m.value("karchive_leader") == 0


def test_build_info_names_the_version() -> None:
    text = Metrics().exposition().decode()
    assert 'karchive_build_info{python="' in text and 'version="' in text


def test_two_metrics_objects_do_not_share_a_registry() -> None:
    a, b = Metrics(), Metrics()
    a.error("x")
    assert b.value("karchive_errors_total", {"reason": "x"}) is None


def test_a_shard_labels_every_served_series_and_an_unsharded_daemon_none() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def served(m: Metrics) -> list[dict[str, str]]:
        m.leader(True)
        m.kaltura_call("media.list", "ok")
        m.cycle(3.0, True)
        return [dict(sample.labels) for family in
                text_string_to_metric_families(m.exposition().decode())
                for sample in family.samples]

    sharded = Metrics()
    sharded.shard("1/3")
    labels = served(sharded)
    assert labels and all(found.get("shard") == "1/3" for found in labels)
    assert {"operation": "media.list", "outcome": "ok", "shard": "1/3"} in labels
    assert sharded.value("karchive_leader") == 1  # in-process readers see the plain series
    assert not any("shard" in found for found in served(Metrics()))
