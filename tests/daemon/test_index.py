"""The daemon's entry index against the sandbox: the real KalturaClient over HTTP, moto's S3, the
daemon's own cycles. A full walk builds the index; later cycles refresh it with what changed
(Kaltura calls counted by the emulator, ``GET /admin/stats``), plan from it, and observe again
by id what they are about to act on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from KalturaClient.Plugins.Core import KalturaMediaEntry
from test_observe_support import aws_env, calls, write_policy

from controller.compose import compose
from controller.runtime.daemon import Daemon, DaemonSettings
from controller.runtime.index import INDEX_FILE, EntryIndex, target_of
from controller.runtime.pipeline import Pipeline
from policies.loader import load_policy
from sandbox.runner import Sandbox

TAG = "indexed-test"
RULES = f"""\
rules:
  - name: tagged
    match:
      tags: {{any: [{TAG}]}}
    state: archived
"""


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}


@pytest.fixture
def sb(make_sandbox: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    sandbox = make_sandbox(entries=3000, seed=3, max_size=1 << 20)
    aws_env(monkeypatch, sandbox)
    return sandbox


def daemon_for(policy: Path, state: Path) -> Daemon:
    return Daemon(DaemonSettings(policy, state_dir=state, lease_duration=600.0))


def source_count(daemon: Daemon, source: str) -> float:
    return daemon.metrics.value("karchive_observations_total", {"source": source}) or 0.0


def tag(policy: Path, entry_id: str) -> None:
    """Tag one entry as an editor would: media.update through the real client."""
    session = compose(load_policy(policy)).kaltura
    session.call("media.update",
                 lambda c: c.media.update(entry_id, KalturaMediaEntry(tags=f"lecture, {TAG}")))


def ready_ids(sb: Sandbox, n: int) -> list[str]:
    assert sb.backend is not None
    with sb.backend.lock:
        return sorted(e.id for e in sb.backend.entries.values()
                      if e.status == 2 and e.display_in_search >= 0
                      and e.moderation_status not in (1, 3)
                      and any(f.is_original and f.status == 2
                              for f in sb.backend.flavors_by_entry.get(e.id, ())))[:n]


def copies(sb: Sandbox, entry_id: str) -> list[str]:
    listing = sb.s3_client().list_objects_v2(Bucket=sb.bucket, Prefix=f"karchive/{entry_id}/")
    return [o["Key"] for o in listing.get("Contents", ())]


def test_cycles_between_walks_ask_kaltura_for_what_changed_and_plan_the_same(
        sb: Sandbox, tmp_path: Path) -> None:
    policy, state = write_policy(tmp_path, sb, rules=RULES), tmp_path / "state"
    daemon = daemon_for(policy, state)
    try:
        before = calls(sb)
        assert daemon.cycle()
        walk = delta(before, calls(sb))
        assert source_count(daemon, "walk") == 1
        assert (state / INDEX_FILE).exists()

        before = calls(sb)
        assert daemon.cycle()
        spent = delta(before, calls(sb))
        assert source_count(daemon, "index") == 1
        # Two listings (edited since the mark, played since the watch's overlap); nothing was
        # edited, so no flavors: against the walk's pages and flavor multirequests.
        assert spent.get("media.list", 0) == 2, spent
        assert spent.get("flavorasset.list", 0) == 0, spent
        assert walk["media.list"] >= 6 and walk["flavorasset.list"] >= 6, walk

        # The index's plan counts what a full walk counts, number for number.
        adapters = compose(load_policy(policy))
        from_index = Pipeline(adapters).run(
            source=EntryIndex(state, target_of(adapters)).pages()).plan
        walked = Pipeline(adapters).run().plan
        assert from_index.census == walked.census
        assert from_index.summary() == walked.summary()
    finally:
        daemon.close()


def test_an_edit_between_walks_is_seen_observed_again_and_acted_on(
        sb: Sandbox, tmp_path: Path) -> None:
    policy, state = write_policy(tmp_path, sb, rules=RULES), tmp_path / "state"
    daemon = daemon_for(policy, state)
    edited, only_in_index = ready_ids(sb, 2)
    try:
        assert daemon.cycle()  # the walk: nothing carries the tag, nothing to do
        assert copies(sb, edited) == []

        tag(policy, edited)
        before = calls(sb)
        assert daemon.cycle()
        spent = delta(before, calls(sb))
        assert source_count(daemon, "index") == 1
        assert copies(sb, edited), "the edited entry was archived from the index's cycle"
        # Two listings, the edited entry's flavors; then its fresh observation by id (idIn and
        # its flavors) before the archive: a handful of calls, not the catalogue's pages.
        assert spent["media.list"] <= 5, spent

        # The index is evidence, not proof: an entry the index (wrongly) says is tagged is
        # observed again before anything is done to it, and left alone.
        adapters = compose(load_policy(policy))
        index = EntryIndex(state, target_of(adapters))
        [lying] = index.get([only_in_index]).values()
        index.update([replace(lying, tags=lying.tags | {TAG})])
        assert daemon.cycle()
        assert copies(sb, only_in_index) == []
        assert EntryIndex(state, target_of(adapters)).get([only_in_index])[only_in_index].tags \
            == lying.tags  # the fresh observation is written back over the lie
    finally:
        daemon.close()


def test_a_corrupt_or_old_index_is_replaced_by_a_full_walk(sb: Sandbox, tmp_path: Path) -> None:
    policy, state = write_policy(tmp_path, sb, rules=RULES), tmp_path / "state"
    daemon = daemon_for(policy, state)
    try:
        assert daemon.cycle()
        with sqlite3.connect(state / INDEX_FILE) as db:  # walked more than a day ago
            db.execute("UPDATE meta SET value = '1000000000.0' WHERE key = 'walked_at'")
        assert daemon.cycle()
        assert source_count(daemon, "walk") == 2
        assert daemon.cycle()
        assert source_count(daemon, "index") == 1

        (state / INDEX_FILE).write_bytes(b"\0" * 4096)
        before = calls(sb)
        assert daemon.cycle()
        assert source_count(daemon, "walk") == 3
        assert delta(before, calls(sb))["media.list"] >= 6
        assert daemon.cycle()
        assert source_count(daemon, "index") == 2
    finally:
        daemon.close()
