"""Shards as real ``karchive run`` processes on one sandbox and bucket, over real HTTP.

Three daemons ``--shard 0/3``, ``1/3``, ``2/3`` and a standby for shard 1: every managed entry
is handled by exactly one of them (their journals say which), the union ends where one
unsharded daemon ends on a twin sandbox (same seed: same ids, flavors and bytes), the Kaltura
calls all of them sent (the emulator's ``/admin/stats``) stay within the policy's budget, and
the standby takes over its shard's lease when the holder is killed. Then a re-split: two
daemons of N=2 killed with a swap in flight, three of N=3 started on the same state
directories, and the entry's new owner finishes what the old one began, nothing lost.

Waits poll with bounded timeouts; the one figure that involves time is an upper bound the
pacing guarantees (a slower machine only sends fewer calls), never a speed.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

from apply_world import TAG_ARCHIVED, TAG_REPLACED, World
from daemon_process import DaemonProcess, wait_for

from controller.compose import compose
from controller.runtime import journal
from controller.runtime.pipeline import Pipeline
from policies.loader import load_policy
from policies.shards import slot

BUDGET = 3  # media.list and flavorasset.list calls per WINDOW for the whole set
WINDOW = 3.0
RATES = f"  rate_limits: {{media.list: {BUDGET}/{WINDOW:g}s, flavorasset.list: " \
        f"{BUDGET}/{WINDOW:g}s}}\n"
PACED = ("media.list", "flavorasset.list")


def write_policy(world: World, ids: list[str], state: str, *, rates: str = RATES) -> None:
    """The world's policy, ``state`` for ``ids``, with the set's Kaltura budget."""
    world.write_policy(world.ids_rule(ids, state), storage_class="STANDARD")
    text = world.policy.read_text().replace("  timeout: 30\n", "  timeout: 30\n" + rates)
    world.policy.write_text(text)


def start(world: World, daemons: list[DaemonProcess], shard: str, state: Path
          ) -> DaemonProcess:
    daemon = DaemonProcess(world.policy, world.sandbox.env(), "--shard", shard,
                           "--interval", "1", "--lease-duration", "6",
                           "--state-dir", str(state))
    daemons.append(daemon)
    return daemon


def stats(world: World, method: str = "GET") -> dict[str, int]:
    request = urllib.request.Request(f"{world.sandbox.kaltura.url}/admin/stats", method=method)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return dict(json.loads(answer.read())["calls"])


def leader(daemon: DaemonProcess, shard: str) -> float | None:
    return daemon.metric("karchive_leader", shard=shard)


def pending(daemon: DaemonProcess) -> float:
    return daemon.metric_sum("karchive_pending_changes")


def handled(state: Path) -> set[str]:
    """The entries a daemon took a step on, from its journal."""
    return {str(r["entry_id"]) for r in journal.read(state / "journal")}


def by_shard(world: World, count: int, per_shard: int, skip: set[str]) -> list[str]:
    """``per_shard`` untouched videos of each shard of ``count`` (none of ``skip``)."""
    chosen: list[str] = []
    pool = [i for i in world.candidates(len(world.backend.all_entries()) // 2) if i not in skip]
    for index in range(count):
        mine = [i for i in pool if slot(i, count) == index][:per_shard]
        assert len(mine) == per_shard, "the seeded catalogue has too few entries of a shard"
        chosen += mine
    return chosen


def walked(world: World) -> list[str]:
    """The ids an unsharded observation walks (Kaltura's listing, real clients)."""
    seen: list[str] = []
    adapters = compose(load_policy(world.policy))
    try:
        Pipeline(adapters).run(each=lambda assessment: seen.append(assessment.entry.entry_id))
    finally:
        adapters.close()
    return seen


def end_state(world: World) -> dict[str, tuple[frozenset[str], tuple[str, ...]]]:
    """Per entry: its tags in Kaltura and its objects in the bucket (the journals shipped
    under log/ and the leases are the runs' own, not the entries')."""
    keys = [k for k in world.object_keys() if not k.startswith(("karchive/log/",
                                                                "karchive/lease"))]
    return {entry.id: (frozenset(world.tags(entry.id)),
                       tuple(sorted(k for k in keys if k.startswith(f"karchive/{entry.id}/"))))
            for entry in world.backend.all_entries()}


def converged(world: World, ids: list[str], running: list[DaemonProcess], tags: set[str],
              after: float) -> None:
    """Wait until every one of ``ids`` carries ``tags`` and each running daemon has planned
    nothing more since ``after`` cycles."""
    wait_for(lambda: all(tags <= world.tags(i) for i in ids), 240, "the entries' tags")
    counts = {id(d): d.cycles() for d in running}
    wait_for(lambda: all(d.cycles() > max(counts[id(d)], after) + 1 and pending(d) == 0
                         for d in running), 120, "every shard to have nothing pending")


def test_three_shards_split_the_library_end_like_one_daemon_and_keep_the_budget(
    world_of: Any, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    options = {"entries": 40, "seed": 8, "max_size": 300_000}
    world, twin = world_of("shards", **options), world_of("one", **options)
    first = by_shard(world, 3, 3, set())
    later = by_shard(world, 3, 2, set(first))
    assert [e.id for e in world.backend.all_entries()] == [e.id for e in twin.backend.all_entries()]

    write_policy(world, first, "archived")
    stats(world, "DELETE")
    began = time.monotonic()
    states = {name: tmp_path / f"state-{name}" for name in ("0", "1", "2", "standby")}
    shards = {name: start(world, daemons, f"{name}/3", states[name]) for name in ("0", "1", "2")}
    for name, daemon in shards.items():
        wait_for(lambda d=daemon, n=name: leader(d, f"{n}/3") == 1, 90, f"shard {name} to lead")
    converged(world, first, list(shards.values()), {TAG_ARCHIVED}, 0)
    seconds, calls = time.monotonic() - began, stats(world)
    # Each shard observed its own entries only, and none of the others'.
    listed = walked(world)
    owned = [sum(1 for entry_id in listed if slot(entry_id, 3) == i) for i in range(3)]
    assert [shards[str(i)].metric_sum("karchive_entries_observed") for i in range(3)] == owned

    # The set kept within the budget: per shard, a token bucket of a third of the rate and a
    # burst of a third of the window's calls (at least one), over the whole run. With the whole
    # budget each, the three would have been bounded by three times as much.
    for operation in PACED:
        allowed = 3 * max(1.0, BUDGET / 3) + BUDGET * seconds / WINDOW
        sent = calls.get(operation, 0)
        print(f"{operation}: {sent} calls from 3 shards in {seconds:.1f}s = "
              f"{sent / seconds * WINDOW:.2f} per {WINDOW:g}s (budget {BUDGET}; bound with the "
              f"burst {allowed:.1f})")
        assert 0 < sent <= allowed, (operation, calls, seconds)

    standby = start(world, daemons, "1/3", states["standby"])
    wait_for(lambda: standby.cycles() >= 1, 90, "the standby's first cycle")
    assert leader(standby, "1/3") == 0
    assert standby.metric_sum("karchive_transitions_total") == 0

    # The holder of shard 1 dies without a word: the standby takes its lease over.
    shards["1"].stop(signal.SIGKILL)
    wait_for(lambda: leader(standby, "1/3") == 1, 60, "the standby to take shard 1 over")
    lease = json.loads(world.s3.get_object(Bucket=world.sandbox.bucket,
                                           Key="karchive/lease-1-of-3.json")["Body"].read())
    assert f"-{standby.proc.pid}-" in lease["holder"]

    # More work for every shard: shard 1's now falls to the standby.
    write_policy(world, first + later, "archived")
    running = [shards["0"], shards["2"], standby]
    converged(world, first + later, running, {TAG_ARCHIVED}, 0)

    # Every managed entry was handled by exactly one daemon, one of the shard that owns it.
    done = {name: handled(state) for name, state in states.items()}
    assert set().union(*done.values()) == set(first + later)
    assert sum(len(ids) for ids in done.values()) == len(first + later)
    for name in ("0", "1", "2"):
        assert all(slot(i, 3) == int(name) for i in done[name])
    assert done["standby"] == {i for i in later if slot(i, 3) == 1} != set()
    assert done["1"] == {i for i in first if slot(i, 3) == 1}

    # One daemon on the twin sandbox ends in the same state.
    write_policy(twin, first + later, "archived")
    single = DaemonProcess(twin.policy, twin.sandbox.env(), "--interval", "1",
                           "--state-dir", str(tmp_path / "state-single"))
    daemons.append(single)
    converged(twin, first + later, [single], {TAG_ARCHIVED}, 0)
    assert end_state(world) == end_state(twin)
    assert "No changes." in world.plan()[1]


def test_a_re_split_finishes_the_swap_the_old_shard_left_in_flight(
    world_of: Any, daemons: list[DaemonProcess], tmp_path: Path
) -> None:
    world = world_of("resplit", entries=40, seed=9, max_size=2_000_000, conversion_delay=6)
    # Only entries that change pods when N goes from 2 to 3: whichever is in flight moves to
    # another state directory, so its new owner has none of the old one's journal.
    moving = [i for i in world.candidates(30) if slot(i, 2) != slot(i, 3)][:8]
    assert len(moving) == 8
    truth = {i: world.original_sha(i) for i in moving}
    write_policy(world, moving, "placeholder", rates="")
    states = [tmp_path / f"pod-{n}" for n in range(3)]  # a StatefulSet's claims, by ordinal
    old = [start(world, daemons, f"{n}/2", states[n]) for n in range(2)]

    def swapping() -> list[str]:
        return [i for i in moving if world.entry(i).replacing_entry_id]

    in_flight = wait_for(swapping, 180, "a swap under way")
    for daemon in old:
        daemon.stop(signal.SIGKILL)
    assert world.never_neither(truth) == []
    entry_id = in_flight[0]
    before, after = slot(entry_id, 2), slot(entry_id, 3)
    assert any(r["step"] == "replace" for r in journal.read(states[before] / "journal")
               if r["entry_id"] == entry_id)
    assert not [r for r in journal.read(states[after] / "journal") if r["entry_id"] == entry_id]

    new = [start(world, daemons, f"{n}/3", states[n]) for n in range(3)]
    converged(world, moving, new, {TAG_ARCHIVED, TAG_REPLACED}, 0)

    # The new owner finished the swap the old one started, from what Kaltura and the bucket
    # show: its own journal has the entry's last steps.
    steps = [r["step"] for r in journal.read(states[after] / "journal")
             if r["entry_id"] == entry_id]
    assert "tag_replaced" in steps and "replace" not in steps, steps
    # Nothing lost, nothing doubled.
    assert world.never_neither(truth) == []
    for i, sha in truth.items():
        assert len(world.object_keys(f"karchive/{i}/original/")) == 1, i
        assert world.manifest(i)["sha256"] == sha
        assert world.original(i).size_in_bytes == len(world.tmp.joinpath(
            "placeholder.mp4").read_bytes())
    assert world.uploads() == []
    assert "No changes." in world.plan()[1]

