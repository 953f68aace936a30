"""Shard leases (adapters/storage/shard_lease.py) over moto's S3 on loopback, and over a folder:
shards of one N hold side by side; shards of two N (a re-split) or a sharded and an unsharded
actor never act at once, whoever comes first, and the old set gives way once it stops."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from controller.adapters.storage.lease import CommandLease, LeasePort
from controller.compose import compose
from controller.errors import PermanentError
from policies.loader import parse_policy
from policies.shards import WHOLE, Shard

BUCKET = "shard-lease-tests"
POLICY = """
version: 1
kaltura: {{service_url: "http://127.0.0.1:9", partner_id: 100, admin_secret: x}}
storage:
  {where}
  prefix: {prefix}
"""

Leases = Callable[[Shard], LeasePort]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="t",
                 aws_secret_access_key="t").create_bucket(Bucket=BUCKET)
    yield url
    server.stop()


@pytest.fixture(params=["bucket", "folder"])
def leases(request: pytest.FixtureRequest, endpoint: str, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Leases:
    """``leases(shard)``: a fresh daemon's lease for that shard, on one archive per test."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "t")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    prefix = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()) + "/"
    where = (f"bucket: {BUCKET}\n  endpoint_url: {endpoint}" if request.param == "bucket"
             else f"url: file://{tmp_path / 'archive'}")
    (tmp_path / "archive").mkdir()
    policy = parse_policy(POLICY.format(where=where, prefix=prefix), "policy.yaml", environ={})
    return lambda shard: compose(policy, shard=shard).lease(duration=30)


def test_the_shards_of_one_count_hold_their_leases_side_by_side(leases: Leases) -> None:
    held = [leases(Shard(i, 3)) for i in range(3)]
    assert [lease.acquire() for lease in held] == [True, True, True]
    assert all(lease.held for lease in held)
    assert [lease.acquire() for lease in held] == [True, True, True]  # renewals
    standby = leases(Shard(1, 3))
    assert standby.acquire() is False and not standby.held  # its shard's lease is taken


def test_a_sharded_daemon_stands_by_while_an_unsharded_one_holds_and_then_acts(
    leases: Leases,
) -> None:
    whole = leases(WHOLE)
    assert whole.acquire()
    shard = leases(Shard(0, 2))
    assert shard.acquire() is False and not shard.held
    # The unsharded one sees the newcomer at its next renewal and stops acting.
    assert whole.acquire() is False and not whole.held
    record = shard.read()
    assert record is not None and record.holder == whole.own.holder  # type: ignore[attr-defined]
    whole.release()
    assert shard.acquire() and shard.held


def test_during_a_re_split_neither_set_acts_until_the_old_one_stops(leases: Leases) -> None:
    old = [leases(Shard(i, 2)) for i in range(2)]
    assert all(lease.acquire() for lease in old)
    new = [leases(Shard(i, 3)) for i in range(3)]
    assert [lease.acquire() for lease in new] == [False, False, False]
    assert [lease.held for lease in new] == [False, False, False]
    # Each old shard, at its next renewal, sees the new set and gives way.
    assert [lease.acquire() for lease in old] == [False, False]
    assert not any(lease.held for lease in old + new)
    old[0].release()
    assert [lease.acquire() for lease in new] == [False, False, False]  # 1/2 still runs
    old[1].release()
    assert [lease.acquire() for lease in new] == [True, True, True]
    assert all(lease.held for lease in new)


def test_of_two_sets_starting_together_at_most_one_acts(leases: Leases) -> None:
    two, three = leases(Shard(0, 2)), leases(Shard(0, 3))
    # Both write their own lease before either checks: each sees the other.
    assert two.own.acquire() and three.own.acquire()  # type: ignore[attr-defined]
    results = [two.acquire(), three.acquire()]
    assert results == [False, False]
    # One checked before the other wrote: the later one stands by.
    two.release()
    assert three.acquire() is True
    late = leases(Shard(1, 2))
    assert late.acquire() is False
    assert three.acquire() is False  # ... and the earlier one gives way at its next check


def test_an_expired_lease_of_another_count_does_not_hold_anyone_back(
    leases: Leases, endpoint: str
) -> None:
    gone = leases(Shard(0, 2))
    assert gone.acquire()
    own: Any = gone.own  # type: ignore[attr-defined]
    _expire(own)
    shard = leases(Shard(0, 3))
    assert shard.acquire() and shard.held


def test_apply_without_a_shard_is_refused_in_one_line_while_shards_run(leases: Leases) -> None:
    shard = leases(Shard(2, 3))
    assert shard.acquire()
    with pytest.raises(PermanentError) as refused, CommandLease(leases(WHOLE), "the archive"):
        pytest.fail("apply took the unsharded lease while a shard held its own")
    message = str(refused.value)
    assert "\n" not in message and shard.own.holder in message  # type: ignore[attr-defined]


def _expire(lease: Any) -> None:
    """Rewrite ``lease``'s object (S3 or lock file) as expired long ago by a live-looking
    holder on another host: only its expiry can free it."""
    body = json.dumps({"holder": "elsewhere-1-x-0", "expires_at": time.time() - 600}).encode()
    if hasattr(lease, "s3"):
        lease.s3.put_object(Bucket=lease.bucket, Key=lease.key, Body=body)
    else:
        Path(lease.path).write_bytes(body)
