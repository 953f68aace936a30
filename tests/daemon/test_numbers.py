"""One definition of each number (policies/counts.py), seen from outside: the daemon's thaw
metrics move while a viewer waits, and plan, stats, health and /metrics agree on every count of
the seeded 2,000-entry catalogue."""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from daemon_process import DaemonProcess, wait_for
from test_daemon import admin, ready

from controller.cli import main

ROOT = Path(__file__).resolve().parents[2]
Start = Callable[..., DaemonProcess]

THAW_POLICY = """\
version: 1
kaltura:
  service_url: ${{KALTURA_SERVICE_URL}}
  partner_id: ${{KALTURA_PARTNER_ID}}
  admin_secret: ${{KALTURA_ADMIN_SECRET}}
  user_id: ${{KALTURA_USER_ID}}
storage:
  bucket: ${{KARCHIVE_BUCKET}}
  endpoint_url: ${{AWS_ENDPOINT_URL}}
  storage_class: GLACIER
placeholder: ${{KARCHIVE_PLACEHOLDER}}
restore_on_play: true
rules:
  - name: old
    match: {{entry_ids: [{entry}], unplayed_for: 1d}}
    state: placeholder
limits: {{max_replace_share: 1.0}}
"""


def test_a_played_placeholder_moves_the_thaw_metrics(
    make_sandbox: Callable[..., Any], start_daemon: Start, tmp_path: Path
) -> None:
    sandbox = make_sandbox(entries=8, seed=11, max_size=400_000, restore_delay=30.0)
    day_ago = time.time() - 2 * 86_400
    entry = next(e.id for e in sandbox.backend.all_entries()
                 if e.status == 2 and e.media_type == 1 and e.created_at < day_ago
                 and (e.last_played_at or 0) < day_ago)
    policy = tmp_path / "policy.yaml"
    policy.write_text(THAW_POLICY.format(entry=entry))
    daemon = start_daemon(policy, sandbox.env(), "--interval", "1")
    ready(daemon)
    wait_for(lambda: daemon.metric("karchive_entries_observed", state="placeholder") == 1
             and daemon.metric_sum("karchive_pending_changes") == 0, 180,
             "the entry to become a placeholder")
    assert daemon.metric("karchive_restore_wait_seconds_count") == 0
    assert daemon.metric("karchive_thaws_in_progress") == 0

    admin(sandbox, "/admin/play", {"entryId": entry})  # a viewer presses play
    # The next cycle asks Glacier for the copy; while the thaw runs the gauge says so and the
    # entry counts as restoring. The thaw lasts 30 s, so a slow cycle on a loaded machine still
    # publishes at least one scrape in the middle of it.
    def thawing() -> dict[Any, float] | None:
        samples = daemon.samples()  # one scrape: the gauges of one cycle
        return samples if samples.get(("karchive_thaws_in_progress", ())) else None

    # A timeout shows what the daemon said (it once showed "No changes": the play had landed in
    # the swap's own second, which restore_on_play now counts).
    try:
        during = wait_for(thawing, 90, "karchive_thaws_in_progress >= 1 during the thaw")
    except AssertionError as failed:
        said = [r.get("message") for r in daemon.logs[-30:]]
        raise AssertionError(f"{failed}; the daemon's last lines: {said}") from None
    assert during[("karchive_thaws_in_progress", ())] == 1
    assert during[("karchive_entries_observed", (("state", "restoring"),))] == 1
    assert during[("karchive_entries_observed", (("state", "placeholder"),))] == 0
    assert daemon.metric("karchive_transitions_total", action="thaw", result="done") == 1
    # Once the copy is readable the wait is observed, and the content goes back.
    wait_for(lambda: (daemon.metric("karchive_restore_wait_seconds_count") or 0) >= 1, 90,
             "karchive_restore_wait_seconds_count to rise after the thaw")
    assert daemon.metric("karchive_thaws_in_progress") == 0
    waited = daemon.metric("karchive_restore_wait_seconds_sum") or 0
    assert waited > 0
    wait_for(lambda: daemon.metric("karchive_transitions_total", action="restore",
                                   result="done") == 1, 120, "the restore")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main([*argv, "--quiet"])
    return code, capsys.readouterr().out


def test_plan_stats_health_and_metrics_agree_on_every_count(
    sandbox: Any, start_daemon: Start, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    env = sandbox.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    policy = str(ROOT / "policy.yaml")
    _, plan_text = _run(capsys, "plan", "-f", policy, "--json")
    summary = json.loads(plan_text)["summary"]
    _, stats_text = _run(capsys, "stats", "-f", policy, "--format", "json")
    stats = json.loads(stats_text)
    health_code, health_text = _run(capsys, "health", "-f", policy)
    rows = list(csv.DictReader(io.StringIO(health_text), delimiter="\t"))
    daemon = start_daemon(ROOT / "policy.yaml", env, "--plan-only", "--interval", "600")
    ready(daemon)
    samples = daemon.samples()

    def metric(name: str, label: str) -> dict[str, int]:
        return {dict(labels)[label]: int(value) for (n, labels), value in samples.items()
                if n == name}

    observed = summary["observed"]
    entries = observed["entries"]
    assert entries == stats["entries"] == len(rows) == sum(
        metric("karchive_entries_observed", "state").values())
    assert entries > 1500  # the seeded catalogue, not an empty observation

    by_state = observed["by_state"]
    assert by_state == stats["by_state"] == metric("karchive_entries_observed", "state")
    assert Counter(row["state"] for row in rows) == Counter(
        {state: n for state, n in by_state.items() if n})
    assert observed["by_desired"] == metric("karchive_entries_desired", "state")

    unhealthy = summary["unhealthy"]
    assert unhealthy == stats["unhealthy"]
    assert unhealthy == {"managed": sum(row["managed"] == "yes" for row in rows),
                         "unmanaged": sum(row["managed"] == "no" for row in rows)}
    assert metric("karchive_entries_unhealthy", "scope") == unhealthy
    assert unhealthy["managed"] + unhealthy["unmanaged"] == by_state["unhealthy"]
    assert unhealthy["managed"] > 0 and unhealthy["unmanaged"] > 0  # both kinds are seeded
    assert health_code == 1  # managed entries are unhealthy

    pending = {action: amount["count"] for action, amount in summary["actions"].items()}
    assert pending == stats["pending_changes"]
    assert {a: n for a, n in metric("karchive_pending_changes", "action").items() if n} == pending

    thaws = observed["thaws_in_progress"]
    assert thaws == stats["thaws_in_progress"] == daemon.metric("karchive_thaws_in_progress")
