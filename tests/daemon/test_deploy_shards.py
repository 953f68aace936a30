"""deploy/ as shards: the StatefulSet's pods become shards 0..N-1 of a set that covers the
library, each with its own claim and lease; ECS runs one service per shard from a task
definition that differs from the single daemon's only where a shard must."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from test_deploy import DEPLOY, of_kind

from policies.shards import Shard, parse_shard, shard_from


def container() -> dict[str, Any]:
    return dict(of_kind("StatefulSet")["spec"]["template"]["spec"]["containers"][0])


def test_the_statefulset_starts_its_shards_together_behind_a_headless_service() -> None:
    statefulset = of_kind("StatefulSet")
    assert statefulset["spec"]["podManagementPolicy"] == "Parallel"
    service = of_kind("Service")
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= \
        statefulset["spec"]["template"]["metadata"]["labels"].items()


def test_the_shard_count_is_the_replica_count_and_the_pod_name_reaches_the_daemon() -> None:
    statefulset = of_kind("StatefulSet")
    env = {e["name"]: e for e in container()["env"]}
    assert env["KARCHIVE_SHARDS"]["value"] == str(statefulset["spec"]["replicas"])
    assert env["KARCHIVE_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert "--shard" not in container()["args"]  # the ordinal decides, not a fixed flag


@pytest.mark.parametrize("replicas", [1, 3, 8])
def test_the_pods_of_n_replicas_are_the_n_shards_each_with_its_own_lease(replicas: int) -> None:
    name = of_kind("StatefulSet")["metadata"]["name"]
    env = {"KARCHIVE_SHARDS": str(replicas)}
    shards = [shard_from(None, {**env, "KARCHIVE_POD_NAME": f"{name}-{i}"}, "unused")
              for i in range(replicas)]
    assert shards == [Shard(i, replicas) for i in range(replicas)]
    assert len({shard.lease_name for shard in shards}) == replicas
    if replicas == 1:
        assert shards[0].lease_name == "lease.json"  # the single daemon of before


def ecs(name: str) -> dict[str, Any]:
    return dict(json.loads((DEPLOY / "ecs" / name).read_text()))


def test_the_ecs_shard_task_differs_from_the_single_one_only_where_a_shard_must() -> None:
    single, shard_task = ecs("task-definition.json"), ecs("shard-task-definition.json")
    command = shard_task["containerDefinitions"][0]["command"]
    shard = parse_shard(command[command.index("--shard") + 1])
    assert shard.sharded
    volumes = {v["name"]: v for v in shard_task["volumes"]}
    root = volumes["state"]["efsVolumeConfiguration"]["rootDirectory"]
    assert root.endswith(f"shard-{shard.index}")  # shards never share a journal
    assert shard_task["family"] == f"karchive-shard-{shard.index}-of-{shard.count}"
    # What README's loop changes, put back: the rest is the single daemon's task, unchanged.
    restored = copy.deepcopy(shard_task)
    restored["family"] = single["family"]
    definition = restored["containerDefinitions"][0]
    definition["command"] = single["containerDefinitions"][0]["command"]
    definition["logConfiguration"]["options"]["awslogs-stream-prefix"] = \
        single["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-stream-prefix"]
    state = next(v for v in restored["volumes"] if v["name"] == "state")
    state["efsVolumeConfiguration"]["rootDirectory"] = next(
        v for v in single["volumes"] if v["name"] == "state")["efsVolumeConfiguration"][
        "rootDirectory"]
    assert restored == single
    readme = (DEPLOY / "ecs" / "README.md").read_text()
    assert "--shard" in readme and "shard-task-definition.json" in readme
