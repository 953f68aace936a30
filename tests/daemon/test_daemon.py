"""``karchive run`` as a subprocess against the sandbox, over real HTTP: probes, metrics,
hot reload, the pause switch, SIGTERM mid-copy, and two daemons on one bucket.

Every wait polls a condition with a bounded timeout; nothing asserts on elapsed time.
"""

from __future__ import annotations

import json
import signal
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from daemon_process import DaemonProcess, wait_for

POLICY = """\
version: 1
kaltura:
  service_url: ${{KALTURA_SERVICE_URL}}
  partner_id: ${{KALTURA_PARTNER_ID}}
  admin_secret: {secret}
  user_id: ${{KALTURA_USER_ID}}
storage:
  bucket: ${{KARCHIVE_BUCKET}}
  endpoint_url: ${{AWS_ENDPOINT_URL}}
  storage_class: STANDARD
limits:
  concurrency: 2
suspend: {suspend}
rules:
{rules}
"""
ARCHIVE_ALL = "  - name: everything\n    state: archived\n"
NO_RULES = "  []\n"

Start = Callable[..., DaemonProcess]


def write_policy(path: Path, rules: str = ARCHIVE_ALL, *, suspend: bool = False,
                 secret: str = "${KALTURA_ADMIN_SECRET}") -> Path:
    path.write_text(POLICY.format(rules=rules.rstrip("\n") if rules != NO_RULES else "  []",
                                  suspend=str(suspend).lower(), secret=secret))
    return path


def bucket_keys(s3: Any, bucket: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {obj["Key"] for page in pages for obj in page.get("Contents", ())}


def admin(sandbox: Any, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(f"{sandbox.kaltura.url}{path}", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10):
        pass


def ready(daemon: DaemonProcess) -> dict[str, Any]:
    return wait_for(lambda: daemon.probe("/readyz")[0] == 200 and daemon.probe("/readyz")[1],
                    90, "/readyz to answer 200")


def cycles_after(daemon: DaemonProcess, count: float) -> float:
    return wait_for(lambda: daemon.cycles() > count and daemon.cycles(), 90,
                    f"more than {count} cycles")


@pytest.fixture
def small(make_sandbox: Callable[..., Any]) -> Any:
    """A sandbox of small videos, so copies finish in moments."""
    return make_sandbox(entries=12, seed=5, max_size=400_000)


def test_probes_and_metrics_report_the_first_observation_and_plan_only_writes_nothing(
    small: Any, start_daemon: Start, tmp_path: Path
) -> None:
    s3 = small.s3_client()
    before = bucket_keys(s3, small.bucket)
    daemon = start_daemon(write_policy(tmp_path / "policy.yaml"), small.env(),
                          "--plan-only", "--interval", "1")
    body = ready(daemon)
    assert body["checks"] == {"policy": "loaded", "kaltura": "ok", "s3": "ok",
                              "first_observation": True}
    status, live = daemon.probe("/healthz")
    assert status == 200 and live["ok"] and live["checks"]["heartbeat_age_seconds"] >= 0

    observed = daemon.metric_sum("karchive_entries_observed")
    assert observed > 0
    assert daemon.metric_sum("karchive_entries_desired") == observed
    assert daemon.metric("karchive_entries_desired", state="archived") == observed
    originals = daemon.metric("karchive_entries_observed", state="original")
    assert originals and daemon.metric("karchive_pending_changes", action="archive") == originals
    assert daemon.metric("karchive_paused") == 0
    assert daemon.metric("karchive_leader") == 0  # plan-only never takes the lease
    assert daemon.metric_sum("karchive_kaltura_calls_total", operation="media.list") >= 1
    assert daemon.metric_sum("karchive_s3_calls_total", operation="ListObjectsV2") >= 1
    assert (daemon.metric("karchive_last_successful_cycle_timestamp_seconds") or 0) > 0
    assert daemon.metric_sum("karchive_build_info") == 1
    assert all("entry_id" not in labels for (_, ls) in daemon.samples() for labels in ls)
    diff_lines = [r for r in daemon.logs if r.get("action") == "archive" and "entry_id" in r]
    assert len(diff_lines) == originals  # the diff, one line an entry, logged once

    cycles_after(daemon, daemon.cycles() + 1)
    assert daemon.stop() == 0
    assert bucket_keys(s3, small.bucket) == before  # not even a lease object


def test_readyz_names_kaltura_when_the_admin_secret_is_wrong(
    small: Any, start_daemon: Start, tmp_path: Path
) -> None:
    daemon = start_daemon(write_policy(tmp_path / "policy.yaml", secret="not-the-secret"),
                          small.env(), "--plan-only", "--interval", "1")
    wait_for(lambda: daemon.metric_sum("karchive_cycles_total", result="failed") >= 1, 90,
             "a failed cycle")
    status, body = daemon.probe("/readyz")
    assert status == 503 and body["ok"] is False
    assert "admin secret" in body["checks"]["kaltura"]
    assert body["checks"]["first_observation"] is False
    assert daemon.probe("/healthz")[0] == 200  # the loop is alive; it just cannot observe
    assert daemon.metric_sum("karchive_errors_total") >= 1
    assert not any("not-the-secret" in line for line in daemon.raw)


def test_an_edited_policy_changes_the_next_cycle(
    small: Any, start_daemon: Start, tmp_path: Path
) -> None:
    policy = write_policy(tmp_path / "policy.yaml", NO_RULES)
    daemon = start_daemon(policy, small.env(), "--plan-only", "--interval", "1")
    ready(daemon)
    assert daemon.metric_sum("karchive_pending_changes") == 0
    assert daemon.metric_sum("karchive_entries_desired", state="archived") == 0

    write_policy(policy, ARCHIVE_ALL)
    wait_for(lambda: daemon.metric_sum("karchive_pending_changes", action="archive") > 0, 90,
             "the edited policy's archive changes")
    assert daemon.logged("policy reloaded")
    assert daemon.metric("karchive_policy_reload_failures_total") == 0


def test_an_invalid_edit_is_counted_and_the_last_good_policy_stays_in_force(
    small: Any, start_daemon: Start, tmp_path: Path
) -> None:
    policy = write_policy(tmp_path / "policy.yaml", ARCHIVE_ALL)
    daemon = start_daemon(policy, small.env(), "--plan-only", "--interval", "1")
    ready(daemon)
    pending = daemon.metric("karchive_pending_changes", action="archive")
    assert pending

    policy.write_text(policy.read_text().replace("state: archived", "state: archivd"))
    wait_for(lambda: daemon.metric("karchive_policy_reload_failures_total") == 1, 90,
             "the reload failure to be counted")
    cycles_after(daemon, daemon.cycles() + 1)  # later cycles still run, on the old policy
    assert daemon.metric("karchive_pending_changes", action="archive") == pending
    assert daemon.metric("karchive_policy_reload_failures_total") == 1  # counted once per edit
    rejected = daemon.logged("policy edit rejected")
    assert rejected and "policy.yaml:" in rejected[0]["message"]
    assert "archivd" in rejected[0]["message"]
    status, body = daemon.probe("/readyz")
    assert status == 200 and "archivd" in body["checks"]["policy_edit_rejected"]

    write_policy(policy, NO_RULES)  # a good edit replaces it
    wait_for(lambda: daemon.metric_sum("karchive_pending_changes") == 0, 90,
             "the fixed policy to take effect")
    assert "policy_edit_rejected" not in daemon.probe("/readyz")[1]["checks"]


def test_suspend_true_pauses_the_daemon_it_observes_but_changes_nothing(
    small: Any, start_daemon: Start, tmp_path: Path
) -> None:
    policy = write_policy(tmp_path / "policy.yaml", ARCHIVE_ALL, suspend=True)
    daemon = start_daemon(policy, small.env(), "--interval", "1")
    ready(daemon)
    cycles_after(daemon, daemon.cycles() + 1)
    assert daemon.metric("karchive_paused") == 1
    assert daemon.metric("karchive_pending_changes", action="archive")
    assert daemon.metric_sum("karchive_transitions_total") == 0
    assert daemon.metric_sum("karchive_archived_bytes_total") == 0
    s3 = small.s3_client()
    prefix = "karchive/"
    assert {k for k in bucket_keys(s3, small.bucket) if k.startswith(prefix)} == {
        prefix + "lease.json"}

    write_policy(policy, ARCHIVE_ALL, suspend=False)  # unpause: it converges
    wait_for(lambda: daemon.metric("karchive_paused") == 0
             and daemon.metric_sum("karchive_pending_changes") == 0, 120, "convergence")
    assert daemon.metric_sum("karchive_transitions_total", action="archive", result="done") > 0


def test_sigterm_during_a_copy_exits_0_and_the_next_run_converges_with_nothing_lost(
    make_sandbox: Callable[..., Any], start_daemon: Start, tmp_path: Path, state_dir: Path
) -> None:
    sandbox = make_sandbox(entries=8, seed=7, max_size=3_000_000)
    admin(sandbox, "/admin/partner", {"download_rate_limit": 150_000})  # copies take seconds
    policy = write_policy(tmp_path / "policy.yaml", ARCHIVE_ALL)
    journal = state_dir / "journal"

    def copying() -> bool:
        lines = [json.loads(line) for f in journal.glob("*.jsonl") for line in
                 f.read_text().splitlines() if line.strip()] if journal.exists() else []
        return any(r.get("step") == "upload" and r.get("result") == "intent" for r in lines)

    first = start_daemon(policy, sandbox.env(), "--interval", "1", "--grace-period", "60")
    wait_for(copying, 120, "a copy to start")
    assert first.stop(signal.SIGTERM) == 0
    assert first.logged("stopping")

    admin(sandbox, "/admin/partner", {"download_rate_limit": None})
    second = start_daemon(policy, sandbox.env(), "--interval", "1")
    wait_for(lambda: ready(second) and second.metric_sum("karchive_pending_changes") == 0
             and second.metric("karchive_entries_observed", state="archived"), 180,
             "convergence after the restart")
    # Every entry the policy wants archived has a verified copy; none is unhealthy.
    wanted = second.metric("karchive_entries_desired", state="archived")
    assert wanted and second.metric("karchive_entries_observed", state="archived") == wanted
    assert not second.metric("karchive_entries_observed", state="unhealthy")
    assert first.logged("stopped")  # a clean stop, not the grace period running out
    assert second.metric_sum("karchive_transitions_total", result="failed") == 0


def test_two_daemons_on_one_bucket_only_one_acts_and_the_standby_takes_over(
    small: Any, start_daemon: Start, tmp_path: Path
) -> None:
    env = small.env()
    daemons = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        daemons.append(start_daemon(write_policy(folder / "policy.yaml", ARCHIVE_ALL), env,
                                    "--interval", "1", "--lease-duration", "10"))
    for daemon in daemons:
        ready(daemon)
        cycles_after(daemon, 1)
    leaders = [d for d in daemons if d.metric("karchive_leader") == 1]
    assert len(leaders) == 1
    leader = leaders[0]
    standby = next(d for d in daemons if d is not leader)
    assert standby.metric("karchive_leader") == 0
    wait_for(lambda: leader.metric_sum("karchive_pending_changes") == 0, 180,
             "the leader to converge")
    assert leader.metric_sum("karchive_transitions_total", result="done") > 0
    assert standby.metric_sum("karchive_transitions_total") == 0
    assert standby.metric_sum("karchive_archived_bytes_total") == 0
    # The journals shipped to the bucket name one process only: the leader's.
    s3 = small.s3_client()
    shipped = [k for k in bucket_keys(s3, small.bucket) if k.startswith("karchive/log/")]
    assert shipped
    assert len({k.rsplit("/", 1)[1].rsplit("-", 1)[0] for k in shipped}) == 1
    assert f"-{leader.proc.pid}-" in shipped[0]

    assert leader.stop(signal.SIGTERM) == 0  # releases the lease
    wait_for(lambda: standby.metric("karchive_leader") == 1, 60, "the standby to take over")


def test_when_the_leader_dies_without_releasing_the_standby_takes_over_at_expiry(
    small: Any, start_daemon: Start, tmp_path: Path
) -> None:
    env = small.env()
    first = start_daemon(write_policy(tmp_path / "policy.yaml", NO_RULES), env,
                         "--interval", "1", "--lease-duration", "4")
    wait_for(lambda: first.metric("karchive_leader") == 1, 90, "the first daemon to lead")
    second = start_daemon(tmp_path / "policy.yaml", env, "--interval", "1",
                          "--lease-duration", "4")
    ready(second)
    cycles_after(second, 1)
    assert second.metric("karchive_leader") == 0
    first.stop(signal.SIGKILL)  # no release: the lease object stays until it expires
    assert "lease.json" in {k.rsplit("/", 1)[-1] for k in bucket_keys(small.s3_client(),
                                                                        small.bucket)}
    wait_for(lambda: second.metric("karchive_leader") == 1, 60, "the takeover at expiry")
    assert second.logged("lease expired; taking it over")


def test_a_plan_the_guard_refuses_is_logged_with_its_reason_and_nothing_moves(
    small: Any, start_daemon: Start, tmp_path: Path
) -> None:
    s3 = small.s3_client()
    before = bucket_keys(s3, small.bucket)
    policy = write_policy(tmp_path / "policy.yaml", "  - name: all\n    state: placeholder\n")
    policy.write_text(policy.read_text().replace(
        "limits:\n  concurrency: 2\n",
        "limits:\n  concurrency: 2\n  max_replace_share: 0.01\n"
        "placeholder: ${KARCHIVE_PLACEHOLDER}\n"))
    daemon = start_daemon(policy, small.env(), "--interval", "1")
    refused = wait_for(lambda: daemon.logged("apply refused"), 90, "the guard's refusal")
    assert "max_replace_share" in refused[0]["message"]
    assert daemon.metric("karchive_errors_total", reason="guard_refused")
    assert daemon.metric_sum("karchive_transitions_total") == 0
    assert bucket_keys(s3, small.bucket) - before <= {"karchive/lease.json"}
