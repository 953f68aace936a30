"""A shard's observation against the sandbox (real KalturaClient and boto3 over loopback HTTP):
its entries only, the others dropped before their flavors are asked for, so its flavor calls
scale with its share while every shard still walks the whole listing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_observe_support import aws_env, calls, write_policy

from controller.compose import compose
from controller.runtime.metrics import CallCounter
from controller.runtime.pipeline import Pipeline, Planned
from policies.loader import load_policy
from policies.schema import Policy
from policies.shards import WHOLE, Shard, slot

COUNT = 3


def observe(policy: Policy, shard: Shard) -> tuple[Planned, list[str]]:
    seen: list[str] = []
    adapters = compose(policy, metrics=CallCounter(), shard=shard)
    try:
        planned = Pipeline(adapters).run(each=lambda a: seen.append(a.entry.entry_id))
    finally:
        adapters.close()
    return planned, seen


def observe_counted(sandbox: Any, policy: Policy, shard: Shard
                    ) -> tuple[list[str], dict[str, int]]:
    """The ids a shard observed, and the calls the emulator received for it (each sub-call of
    a multirequest counted by its own service.action)."""
    before = calls(sandbox)
    _, seen = observe(policy, shard)
    after = calls(sandbox)
    return seen, {key: n - before.get(key, 0) for key, n in after.items()}


@pytest.fixture
def policy(tmp_path: Path, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Policy:
    aws_env(monkeypatch, sandbox)
    return load_policy(write_policy(tmp_path, sandbox))


def test_the_shards_observe_disjoint_parts_that_add_up_to_the_whole(policy: Policy) -> None:
    whole, everyone = observe(policy, WHOLE)
    parts = [observe(policy, Shard(i, COUNT)) for i in range(COUNT)]
    for index, (planned, seen) in enumerate(parts):
        assert seen and all(slot(i, COUNT) == index for i in seen)
        assert planned.observation.entries == len(seen)
    assert sorted(i for _, seen in parts for i in seen) == sorted(everyone)
    # The plan and the census of the set are those of one unsharded observation.
    items = sorted((item.entry_id, item.action.value) for planned, _ in parts
                   for item in planned.plan.items)
    assert items == sorted((item.entry_id, item.action.value) for item in whole.plan.items)
    census: Counter[str] = Counter()
    for planned, _ in parts:
        census.update({str(k): v for k, v in planned.plan.census.by_state.items()})
    assert +census == +Counter({str(k): v for k, v in whole.plan.census.by_state.items()})


def test_a_shard_walks_the_whole_listing_but_fetches_only_its_entries_flavors(
    sandbox: Any, policy: Policy,
) -> None:
    everyone, whole = observe_counted(sandbox, policy, WHOLE)
    flavors = whole["flavorasset.list"]
    assert flavors > COUNT  # enough batches for a share to show
    for index in range(COUNT):
        seen, spent = observe_counted(sandbox, policy, Shard(index, COUNT))
        # Kaltura's listing cannot filter by a hash: each shard pages through all of it.
        assert spent["media.list"] == whole["media.list"]
        # Its flavor batches are those of its own entries: its share, rounded up to a batch.
        share = len(seen) / len(everyone)
        assert 0 < spent["flavorasset.list"] <= share * flavors + 1, (index, share, spent)
