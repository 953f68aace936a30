"""The crash test: `karchive apply` killed with SIGKILL at random instants, over and over.

A subprocess applies a placeholder policy to 30 entries; a seeded RNG picks when to kill it.
After every kill, invariant 1 (design.md) must hold for every managed entry: its real content
is in Kaltura (the source flavor's bytes are the catalogue's original) or the bucket holds a copy
whose bytes have the original's SHA-256. Then apply runs to completion and must converge: the
plan shows no changes, one copy per entry, no multipart upload left behind.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from apply_world import MiB, World

from controller.runtime import journal

KILLS = 20
ENTRIES = 30


def _start(world: World) -> subprocess.Popen[bytes]:
    env = {**os.environ, **world.sandbox.env()}
    return subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "apply", "-f", str(world.policy),
         "--auto-approve", "-q", "--journal", str(world.journal), "--wait", "30"],
        cwd=world.tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _lines(world: World) -> int:
    return sum(1 for _ in journal.read(world.journal))


def _until_work_begins(world: World, process: subprocess.Popen[bytes], before: int) -> None:
    """Wait for the run's first journal line (its first intent): the kill that follows lands
    in its work, however long this machine takes to start and observe."""
    deadline = time.monotonic() + 60
    while process.poll() is None and _lines(world) == before and time.monotonic() < deadline:
        time.sleep(0.05)


def test_apply_killed_at_random_instants_never_loses_a_video_and_then_converges(make_world):
    world = make_world(entries=45, seed=5, max_size=12 * MiB, conversion_delay=0.3)
    ids = world.candidates(ENTRIES)
    truth = {entry_id: world.original_sha(entry_id) for entry_id in ids}
    world.write_policy(world.ids_rule(ids, "placeholder"), storage_class="STANDARD",
                       concurrency=4)
    rng = random.Random(20261121)
    killed = mid_step = 0

    for kill in range(KILLS):
        before = _lines(world)
        process = _start(world)
        _until_work_begins(world, process, before)
        time.sleep(rng.uniform(0.0, 0.8))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            killed += 1
        process.wait(timeout=30)
        # Read right after this kill: a later run may already finish what it interrupted.
        mid_step += bool(journal.interrupted(world.journal))
        lost = world.never_neither(truth)
        assert lost == [], f"after kill {kill + 1}: neither content nor copy for {lost}"

    # The kills landed mid-work: processes were running and steps were left as bare intents.
    assert killed >= KILLS * 3 // 4
    assert mid_step >= 1

    # Run to completion: each run finishes what the kills interrupted.
    for _ in range(6):
        process = _start(world)
        _, err = process.communicate(timeout=120)
        code, out = world.plan()
        if "No changes." in out:
            break
    else:
        raise AssertionError(f"apply never converged; last plan:\n{out}\n{err.decode()}")
    world.assert_swapped(truth)
