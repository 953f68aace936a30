"""Each reconciler does what it declares: its journalled steps, its Kaltura actions, its S3
permissions (``reconcilers.base.Needs``), run for real against the sandbox.

Every reconciler is run directly on a small catalogue through one life — archive, replace,
thaw and restore, repair, recover, delete, recreate — and for each run three records are read
independently of its declaration: the journal lines it wrote, the Kaltura actions the emulator
counted (``/admin/stats``), and the S3 operations the seam counted (mapped to IAM actions by the
seam's table). What it did must be what it (and the reconcilers it runs itself) declared; and
every name a plan item can carry must be registered.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from apply_world import TAG_ARCHIVED, World

from controller.adapters.storage.s3 import IAM_ACTION
from controller.compose import compose
from controller.runtime.journal import Journal
from controller.runtime.metrics import CallCounter
from policies import plan
from policies.loader import load_policy
from reconcilers.base import Context, Result
from reconcilers.registry import RECONCILERS, needs_of

# Calls the session makes for itself, and downloads from serve URLs: not API actions.
INFRASTRUCTURE = ("session.start", "multirequest")


def test_every_reconciler_a_plan_can_name_is_registered() -> None:
    names = {name for chain in plan.CHAINS for name in chain}
    assert names >= {"archive", "replace", "thaw", "restore", "recover", "repair", "delete"}
    assert names <= set(RECONCILERS)
    for reconciler in RECONCILERS.values():
        assert set(reconciler.uses) <= set(RECONCILERS), reconciler.name


class Recorder:
    """Runs one reconciler on one entry until it is done, and keeps what it did."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.counter = CallCounter()
        self.ctx: Context = compose(load_policy(world.policy), metrics=self.counter).context(
            Journal(world.journal))
        self.exercised: dict[str, set[str]] = {}

    def run(self, name: str, entry_id: str, limit: float = 60.0) -> Any:
        before_calls = self._kaltura_calls()
        before_s3 = dict(self.counter.s3)
        before_lines = len(self._lines())
        deadline = time.monotonic() + limit
        reconciler = RECONCILERS[name]
        while True:
            outcome = reconciler.run(entry_id, self.ctx)
            if outcome.result is not Result.WAITING:
                break
            assert time.monotonic() < deadline, outcome.message
            self.world.backend.tick()
            time.sleep(0.3)
        kaltura = {action for action, n in self._kaltura_calls().items()
                   if n > before_calls.get(action, 0)
                   and action not in INFRASTRUCTURE and not action.startswith("download.")}
        s3 = {IAM_ACTION[op] for (op, _outcome), n in self.counter.s3.items()
              if n > before_s3.get((op, _outcome), 0)}
        lines = self._lines()[before_lines:]
        self._check(name, kaltura, s3, lines)
        return outcome

    def _check(self, name: str, kaltura: set[str], s3: set[str],
               lines: list[dict[str, Any]]) -> None:
        declared = needs_of(name)
        assert kaltura <= declared.kaltura, (name, sorted(kaltura - declared.kaltura))
        assert s3 <= declared.s3, (name, sorted(s3 - declared.s3))
        runs = {name, *_uses(name)}
        for line in lines:
            action, step = line["action"], line["step"]
            assert action in runs, (name, action, step)
            assert step in RECONCILERS[action].needs.steps, (action, step)
            self.exercised.setdefault(action, set()).add(step)

    def _kaltura_calls(self) -> dict[str, int]:
        return dict(self.world.admin("/admin/stats", method="GET")["calls"])

    def _lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for path in sorted(self.world.journal.rglob("*.jsonl"))
                for line in path.read_text().splitlines()]


def _uses(name: str) -> set[str]:
    found, todo = set(), list(RECONCILERS[name].uses)
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo += RECONCILERS[current].uses
    return found


@pytest.mark.slow
def test_what_each_reconciler_journals_and_calls_is_what_it_declares(make_world) -> None:
    world = make_world(restore_delay=1.0, max_size=3 * 1024 * 1024)
    restored, retagged, dead = world.candidates(3)
    purged = world.purgeable(1)[0]
    world.write_policy(world.ids_rule([restored, retagged, dead, purged], "archived"),
                       storage_class="GLACIER", extra="allow_delete: true")
    record = Recorder(world)

    for entry_id in (restored, retagged, dead):
        assert record.run("archive", entry_id).result is Result.DONE
    for entry_id in (restored, retagged):
        assert record.run("replace", entry_id).result is Result.DONE
    # The placeholder's copy is in GLACIER: thawed first (thaw's steps), then restored.
    assert record.run("restore", restored).result is Result.DONE
    # The restore recorded the copy again under the new flavor's key (a server-side copy, in
    # GLACIER like the first): thawing it is a request, and once the thaw has run, a no-op.
    assert record.run("thaw", restored).result is Result.DONE
    deadline = time.monotonic() + 30
    while record.run("thaw", restored).result is not Result.SKIPPED:
        assert time.monotonic() < deadline, "the second copy never became readable"
        time.sleep(0.3)
    # A placeholder that lost archived_to_s3 (someone edited the tags): the repair adds it.
    with world.backend.lock:
        world.entry(retagged).tags = ", ".join(
            t for t in world.tags(retagged) if t != TAG_ARCHIVED)
    assert record.run("repair", retagged).result is Result.DONE
    # The original flavor went to ERROR for good: recovered from the copy, thawed first.
    with world.backend.lock:
        world.original(dead).status = -1
    assert record.run("recover", dead).result is Result.DONE
    assert record.run("delete", purged).result is Result.DONE
    assert record.run("recreate", purged).result is Result.DONE

    # Each reconciler's own steps were met (the checks above were not vacuous).
    assert set(record.exercised) == {"archive", "replace", "thaw", "restore", "repair",
                                     "recover", "delete", "recreate"}
