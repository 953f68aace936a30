"""``karchive run`` archiving to a directory (storage.url): the lease is a lock file there, the
copies and the shipped journal land beside it, and a clean stop releases the lock."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemon_process import DaemonProcess, wait_for

POLICY = """\
version: 1
kaltura:
  service_url: ${{KALTURA_SERVICE_URL}}
  partner_id: ${{KALTURA_PARTNER_ID}}
  admin_secret: ${{KALTURA_ADMIN_SECRET}}
  user_id: ${{KALTURA_USER_ID}}
storage:
  url: file://{root}
limits:
  concurrency: 2
rules:
  - name: everything
    state: archived
"""


def test_a_daemon_archives_to_a_directory_under_a_lock_file_it_releases(
    make_sandbox: Callable[..., Any], start_daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    sandbox = make_sandbox(entries=6, seed=5, max_size=400_000)
    root = tmp_path / "nas"
    root.mkdir()
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(root=root))
    daemon = start_daemon(policy, sandbox.env(), "--interval", "1")
    lock = root / "karchive" / "lease.json"
    holder = wait_for(lambda: lock.exists() and json.loads(lock.read_text())["holder"], 60,
                      "the lock file")
    wait_for(lambda: daemon.metric_sum("karchive_pending_changes") == 0
             and daemon.metric("karchive_entries_observed", state="archived"), 120,
             "every entry archived")
    copies = list((root / "karchive").glob("*/original/*"))
    assert copies and all(p.stat().st_size > 0 for p in copies)
    assert daemon.metric("karchive_leader") == 1
    assert daemon.stop(signal.SIGTERM) == 0
    assert list((root / "karchive" / "log").rglob("*.jsonl"))  # the journal, shipped
    assert holder and not lock.exists()  # released on a clean stop
