"""The bucket lease against moto's S3 over loopback HTTP: take, renew, lose, expire, take over."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from controller.adapters.storage.lease import Lease, new_holder_id
from controller.errors import TransientError

BUCKET = "lease-tests"


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket=BUCKET)
    yield client
    server.stop()


class Clock:
    """Wall and monotonic time that tests move by hand (the lease reads both)."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def wall(self) -> float:
        return self.now

    def mono(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    return f"karchive/{request.node.name}/lease.json"


def make(s3: Any, key: str, clock: Clock, holder: str, duration: float = 60.0) -> Lease:
    return Lease(s3, BUCKET, key, holder=holder, duration=duration, wall=clock.wall,
                 monotonic=clock.mono)


def test_a_free_lease_is_taken_and_names_its_holder(s3: Any, key: str) -> None:
    clock = Clock()
    lease = make(s3, key, clock, "host-1-aa")
    assert lease.acquire() is True
    assert lease.held
    record = lease.read()
    assert record is not None and record.holder == "host-1-aa"
    assert record.expires_at == clock.now + 60


def test_a_held_lease_is_not_taken_by_another_daemon(s3: Any, key: str) -> None:
    clock = Clock()
    first, second = make(s3, key, clock, "a"), make(s3, key, clock, "b")
    assert first.acquire()
    assert second.acquire() is False
    assert not second.held
    assert first.held


def test_renewal_moves_the_expiry_and_keeps_the_other_out(s3: Any, key: str) -> None:
    clock = Clock()
    first, second = make(s3, key, clock, "a"), make(s3, key, clock, "b")
    first.acquire()
    clock.advance(50)
    assert first.acquire() is True  # renewed with IfMatch on its own etag
    clock.advance(50)  # 100 s after taking: past the first expiry, within the renewed one
    assert second.acquire() is False
    record = first.read()
    assert record is not None and record.holder == "a" and record.expires_at == clock.now + 10


def test_an_expired_lease_is_taken_over_and_the_old_holder_learns_it_lost(
    s3: Any, key: str
) -> None:
    clock = Clock()
    old, standby = make(s3, key, clock, "old"), make(s3, key, clock, "standby")
    old.acquire()
    clock.advance(61)
    assert not old.held  # its local deadline passed before anyone could take over
    assert standby.acquire() is True
    assert old.acquire() is False  # the IfMatch renewal fails: the etag changed
    assert not old.held
    record = standby.read()
    assert record is not None and record.holder == "standby"


def test_the_hold_lapses_locally_before_the_written_expiry(s3: Any, key: str) -> None:
    clock = Clock()
    lease = make(s3, key, clock, "a", duration=100)
    lease.acquire()
    clock.advance(89)
    assert lease.held
    clock.advance(2)  # 91 s: the stored expiry (100 s) has not passed, the local trust (90 %) has
    assert not lease.held


def test_of_two_standbys_racing_for_an_expired_lease_exactly_one_wins(
    s3: Any, key: str
) -> None:
    clock = Clock()
    make(s3, key, clock, "gone").acquire()
    clock.advance(120)
    expired = make(s3, key, clock, "probe").read()
    assert expired is not None
    contenders = [make(s3, key, clock, f"standby-{i}") for i in range(2)]
    # Both saw the same expired record; both write conditionally on its etag.
    results = [c._write(if_match=expired.etag) for c in contenders]
    assert sorted(results) == [False, True]


def test_concurrent_takers_of_a_free_lease_yield_one_holder(s3: Any, key: str) -> None:
    clock = Clock()
    contenders = [make(s3, key, clock, f"d{i}") for i in range(4)]
    barrier = threading.Barrier(len(contenders))
    won: list[str] = []

    def take(lease: Lease) -> None:
        barrier.wait()
        if lease.acquire():
            won.append(lease.holder)

    threads = [threading.Thread(target=take, args=(c,)) for c in contenders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    record = contenders[0].read()
    assert record is not None
    # moto checks IfNoneMatch then writes without a lock, so two writers can both pass the check
    # in a tiny window; whoever wrote last holds the object, and only that one can renew.
    survivors = [c for c in contenders if c.acquire()]
    assert [s.holder for s in survivors] == [record.holder]
    assert record.holder in won


def test_release_frees_the_lease_for_a_standby_at_once(s3: Any, key: str) -> None:
    clock = Clock()
    first, second = make(s3, key, clock, "a"), make(s3, key, clock, "b")
    first.acquire()
    first.release()
    assert not first.held
    assert first.read() is None
    assert second.acquire() is True


def test_release_never_deletes_a_lease_that_changed_hands(s3: Any, key: str) -> None:
    clock = Clock()
    old, new = make(s3, key, clock, "old"), make(s3, key, clock, "new")
    old.acquire()
    clock.advance(61)
    new.acquire()
    old.release()  # IfMatch on its stale etag: refused, the new holder keeps the lease
    record = new.read()
    assert record is not None and record.holder == "new"


def test_an_unreadable_lease_object_is_repaired_by_a_conditional_takeover(
    s3: Any, key: str
) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"not json")
    lease = make(s3, key, Clock(), "a")
    assert lease.acquire() is True
    body = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert body["holder"] == "a"


def test_an_unreachable_bucket_is_a_transient_error(s3: Any, key: str) -> None:
    dead = boto3.client("s3", endpoint_url="http://127.0.0.1:9", region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    with pytest.raises(TransientError) as caught:
        Lease(dead, BUCKET, key, holder="a").acquire()
    # The storage seam's line: the endpoint, what failed, the lease's key, what to check.
    assert str(caught.value).startswith(
        f"S3 at http://127.0.0.1:9 refused the connection (GetObject (the lease) "
        f"s3://{BUCKET}/{key}); check the host and port in storage.endpoint_url")


def test_holder_ids_are_unique_per_call_and_name_the_host() -> None:
    import socket

    first, second = new_holder_id(), new_holder_id()
    assert first != second
    assert first.startswith(socket.gethostname() + "-")


def test_a_released_lease_object_is_never_taken_back_by_a_late_renewal(
    s3: Any, key: str
) -> None:
    clock = Clock()
    lease = make(s3, key, clock, "a")
    lease.acquire()
    lease.release()
    assert lease.acquire() is False  # a renewal job that raced the shutdown
    assert lease.read() is None


def test_a_holder_is_gone_only_when_provably_dead_in_this_boot_and_pid_namespace() -> None:
    import socket
    import subprocess

    from controller.adapters.storage.lease import _process_scope, holder_is_gone

    host, scope = socket.gethostname(), _process_scope()
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert not holder_is_gone(f"{host}-{child.pid}-{scope}-abcd1234")  # alive: acting
    finally:
        child.kill()
        child.wait()
    assert holder_is_gone(f"{host}-{child.pid}-{scope}-abcd1234")  # reaped: gone
    # The same pid means nothing on another host, after a reboot, in another PID namespace
    # (containers sharing a host name), or in an id this cannot read: waited out.
    assert not holder_is_gone(f"other-host-{child.pid}-{scope}-abcd1234")
    boot, namespace = scope.split(".")
    other_boot = "0" * 12 if boot != "0" * 12 else "1" * 12
    assert not holder_is_gone(f"{host}-{child.pid}-{other_boot}.{namespace}-abcd1234")
    assert not holder_is_gone(f"{host}-{child.pid}-{boot}.1-abcd1234")
    assert not holder_is_gone(f"{host}-{child.pid}-x-abcd1234")
    assert not holder_is_gone(f"{host}-{child.pid}-abcd1234")  # the older id format
