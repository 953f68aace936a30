"""The daemon's pure parts, without servers: policy reload, triggers, the probes' logic."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from botocore.config import Config

from controller.compose import compose
from controller.runtime.daemon import Daemon, DaemonSettings, PolicySource
from controller.runtime.metrics import Metrics
from policies.schema import Policy

POLICY = """\
version: 1
kaltura: {{service_url: "http://127.0.0.1:9", partner_id: 100, admin_secret: s3cret-value}}
storage: {{bucket: karchive-test}}
schedule: {schedule}
rules: [{{name: all, state: archived}}]
"""


def write(path: Path, schedule: str = "{interval: 2h, jitter: 1min}") -> Path:
    path.write_text(POLICY.format(schedule=schedule))
    return path


def bump_mtime(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_a_policy_is_reloaded_only_when_its_bytes_change(tmp_path: Path) -> None:
    metrics = Metrics()
    source = PolicySource(write(tmp_path / "policy.yaml"), metrics)
    assert source.refresh() is True
    assert source.refresh() is False  # unchanged
    bump_mtime(source.path)
    assert source.refresh() is False  # touched, same bytes
    write(source.path, "{interval: 3h}")
    bump_mtime(source.path)
    assert source.refresh() is True
    assert source.policy is not None and source.policy.schedule.interval is not None
    assert source.policy.schedule.interval.seconds == 3 * 3600


def test_an_invalid_edit_is_counted_once_and_the_last_good_policy_kept(tmp_path: Path) -> None:
    metrics = Metrics()
    source = PolicySource(write(tmp_path / "policy.yaml"), metrics)
    source.refresh()
    good = source.policy
    source.path.write_text(source.path.read_text().replace("rules:", "rulez:"))
    bump_mtime(source.path)
    assert source.refresh() is False
    assert source.refresh() is False  # the same bad bytes are not counted again
    assert source.policy is good
    assert source.error is not None and "rulez" in source.error
    assert metrics.value("karchive_policy_reload_failures_total") == 1


def test_a_missing_policy_file_is_an_error_naming_the_path(tmp_path: Path) -> None:
    source = PolicySource(tmp_path / "nope.yaml", Metrics())
    assert source.refresh() is False
    assert source.policy is None and source.error and "nope.yaml" in source.error


def daemon_for(path: Path, **kw: object) -> Daemon:
    daemon = Daemon(DaemonSettings(policy_path=path, **kw))  # type: ignore[arg-type]
    daemon.source.refresh()
    return daemon


@pytest.mark.parametrize(
    ("schedule", "kind", "interval"),
    [
        ("{interval: 2h, jitter: 1min}", IntervalTrigger, 7200.0),
        ('{cron: "0 2 * * *", jitter: 5min}', CronTrigger, 86400.0),
        ('{cron: "*/15 * * * *"}', CronTrigger, 900.0),
    ],
)
def test_the_schedule_becomes_an_apscheduler_trigger_with_its_jitter(
    tmp_path: Path, schedule: str, kind: type, interval: float
) -> None:
    daemon = daemon_for(write(tmp_path / "policy.yaml", schedule))
    assert daemon.source.policy is not None
    main, check = daemon._triggers(daemon.source.policy)
    assert isinstance(main, kind)
    assert main.jitter == int(daemon.source.policy.schedule.jitter.seconds) or (
        main.jitter is None and daemon.source.policy.schedule.jitter.seconds == 0)
    assert isinstance(check, IntervalTrigger) and check.interval.total_seconds() == 15 * 60
    assert daemon._interval_seconds() == interval


def test_the_interval_flag_overrides_the_policy_schedule(tmp_path: Path) -> None:
    daemon = daemon_for(write(tmp_path / "policy.yaml"), interval=2.0)
    assert daemon.source.policy is not None
    main, _ = daemon._triggers(daemon.source.policy)
    assert isinstance(main, IntervalTrigger) and main.interval.total_seconds() == 2
    assert daemon._interval_seconds() == 2.0


@pytest.mark.parametrize(("interval", "jitter"), [(10.0, 5), (1.0, None), (7200.0, 300)])
def test_jitter_never_exceeds_half_the_interval(tmp_path: Path, interval: float,
                                                jitter: int | None) -> None:
    policy = write(tmp_path / "policy.yaml", "{interval: 2h, jitter: 5min}")
    daemon = daemon_for(policy, interval=None if interval == 7200.0 else interval)
    assert daemon.source.policy is not None
    main, _ = daemon._triggers(daemon.source.policy)
    assert main.jitter == jitter


def test_liveness_fails_when_the_heartbeat_is_stale(tmp_path: Path) -> None:
    daemon = daemon_for(write(tmp_path / "policy.yaml"), heartbeat=5.0)
    assert daemon.liveness()[0] is True
    daemon.status.last_tick -= 60  # the scheduler stopped ticking a minute ago
    ok, checks = daemon.liveness()
    assert ok is False and checks["heartbeat_age_seconds"] >= 60
    daemon.tick()
    assert daemon.liveness()[0] is True


def test_liveness_fails_when_a_cycle_runs_past_its_stall_budget(tmp_path: Path) -> None:
    daemon = daemon_for(write(tmp_path / "policy.yaml"))
    daemon.status.cycle_started = daemon.status.last_tick - 7 * 3600  # 2 h interval: 6 h budget
    ok, checks = daemon.liveness()
    assert ok is False and checks["cycle_running_seconds"] >= 7 * 3600


def test_readiness_needs_policy_kaltura_s3_and_a_first_observation(tmp_path: Path) -> None:
    daemon = daemon_for(write(tmp_path / "policy.yaml"))
    ok, checks = daemon.readiness()
    assert ok is False and checks["first_observation"] is False
    daemon.status.kaltura = daemon.status.s3 = "ok"
    daemon.status.observed = True
    assert daemon.readiness() == (True, {"policy": "loaded", "kaltura": "ok", "s3": "ok",
                                         "first_observation": True})


def test_a_cycle_that_cannot_reach_the_outside_fails_without_killing_the_loop(
    tmp_path: Path,
) -> None:
    daemon = daemon_for(write(tmp_path / "policy.yaml"), plan_only=True)
    daemon._adopt = lambda policy: _offline(daemon, policy)  # type: ignore[method-assign]
    assert daemon.cycle() is False
    assert daemon.metrics.value("karchive_cycles_total", {"result": "failed"}) == 1
    assert daemon.readiness()[0] is False
    assert "S3 at http://127.0.0.1:9 refused the connection" in daemon.status.s3
    assert daemon.status.kaltura != "ok"
    assert daemon.cycle() is False  # and the next one runs too
    assert daemon.metrics.value("karchive_cycles_total", {"result": "failed"}) == 2


def _offline(daemon: Daemon, policy: Policy) -> None:
    """The real adapters, the bucket's client pointed at a closed port, with no retries (the
    bucket is listed first, so Kaltura is never asked)."""
    dead = boto3.client("s3", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="y",
                        config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    daemon._adapters = compose(policy, metrics=daemon.metrics, s3_client=dead)
