"""The crash test with the entry index in use: ``karchive run`` killed with SIGKILL at random
instants, over and over, then left to converge.

The daemon keeps its entry index in its state directory (``controller/runtime/index.py``): the
first cycle walks and writes it, each restart finds it and refreshes it, and every cycle after
the first plans from it. Some kills land in the first second of a start (the walk that writes
the index, or the refresh), the rest once work has begun. After every kill, invariant 1
(design.md) must hold for every managed entry, as in ``test_crash.py``. Then one daemon runs
until a full-walk plan shows no changes: the end state is that of apply (one copy per entry,
the placeholder in Kaltura, no multipart upload left), and what the index holds is true — every
row not marked for a new reading equals what Kaltura shows now.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from apply_world import MiB, World

from controller.compose import compose
from controller.runtime import journal
from controller.runtime.index import EntryIndex, encode, target_of
from controller.runtime.pipeline import Pipeline
from policies.loader import load_policy

KILLS = 14
ENTRIES = 30


def _start(world: World, state: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **world.sandbox.env()}
    with (world.tmp / "daemon.log").open("ab") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "run", "-f", str(world.policy),
             "--interval", "1", "--metrics-port", "0", "--state-dir", str(state),
             "--lease-duration", "60"],
            cwd=world.tmp, env=env, stdout=subprocess.DEVNULL, stderr=log)


def _lines(state: Path) -> int:
    folder = state / journal.JOURNAL_DIR
    return sum(1 for _ in journal.read(folder)) if folder.exists() else 0


def _kill_at_random(world: World, state: Path, rng: random.Random) -> bool:
    """Start the daemon and SIGKILL it: early (its walk or refresh) or once it has begun work.
    Whether it was still running when killed."""
    before = _lines(state)
    process = _start(world, state)
    if rng.random() < 0.35:
        time.sleep(rng.uniform(0.2, 1.5))
    else:
        deadline = time.monotonic() + 60
        while process.poll() is None and _lines(state) == before \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
    running = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return running


def _settled(plan: str) -> bool:
    return "No changes." in plan and "waiting" not in plan


def _index_is_true(world: World, state: Path) -> None:
    """Every indexed entry not marked stale is, field for field, what a fresh walk sees."""
    adapters = compose(load_policy(world.policy))
    index = EntryIndex(state, target_of(adapters))
    assert index.marks() is not None, index.problem
    stale = set(index.stale())
    walked: dict[str, bytes] = {}

    def record(page: object) -> None:
        walked.update((e.entry_id, encode(e)) for e in page)  # type: ignore[attr-defined]

    Pipeline(adapters).run(record=record)
    rows = {e.entry_id: encode(e) for page in index.pages() for e in page}
    wrong = sorted(i for i in set(rows) | set(walked)
                   if i not in stale and rows.get(i) != walked.get(i))
    assert wrong == [], f"the index disagrees with Kaltura on {wrong}"


def test_run_killed_at_random_instants_with_its_index_never_loses_a_video(make_world):
    world = make_world(entries=45, seed=5, max_size=12 * MiB, conversion_delay=0.3)
    state = world.tmp / "state"
    ids = world.candidates(ENTRIES)
    truth = {entry_id: world.original_sha(entry_id) for entry_id in ids}
    world.write_policy(world.ids_rule(ids, "placeholder"), storage_class="STANDARD",
                       concurrency=4)
    rng = random.Random(20261202)
    killed = mid_step = 0

    for kill in range(KILLS):
        killed += _kill_at_random(world, state, rng)
        mid_step += bool(journal.interrupted(state / journal.JOURNAL_DIR))
        lost = world.never_neither(truth)
        assert lost == [], f"after kill {kill + 1}: neither content nor copy for {lost}"
    # The kills landed while the daemon ran, and some of them mid-step (a bare intent).
    assert killed >= KILLS * 3 // 4
    assert mid_step >= 1
    # ... and cycles planned from the index, not only from walks.
    assert "index refreshed" in (world.tmp / "daemon.log").read_text()

    # One daemon, left to run: it converges from whatever the kills and the index left. Done
    # is a full-walk plan with nothing to do and nothing waiting, read again once the daemon
    # has stopped (a plan read beside a working daemon can catch a replace in flight).
    for _ in range(3):
        process = _start(world, state)
        try:
            deadline = time.monotonic() + 240
            while not _settled(world.plan()[1]):
                assert process.poll() is None, "the daemon stopped"
                assert time.monotonic() < deadline, f"never converged:\n{world.plan()[1]}"
                time.sleep(1)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        if _settled(world.plan()[1]):
            break
    else:
        raise AssertionError(f"never settled:\n{world.plan()[1]}")

    world.assert_swapped(truth)
    _index_is_true(world, state)
