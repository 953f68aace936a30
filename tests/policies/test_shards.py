"""The shard split (policies/shards.py): a stable hash of the entry id, disjoint shards that
cover the library, the share of the partner's budgets, and the one-line refusals of bad values."""

from __future__ import annotations

import contextlib
import hashlib
import io
import random
import string
from pathlib import Path

import pytest

from controller.cli import main
from policies.durations import Rate
from policies.loader import parse_policy
from policies.shards import (
    LEASE_NAME,
    WHOLE,
    Shard,
    parse_shard,
    shard_from,
    shard_of_lease,
    shard_of_pod,
    slot,
)

POLICY = """
version: 1
kaltura:
  service_url: http://127.0.0.1:9
  partner_id: 100
  admin_secret: not-a-secret
  rate_limits: {default: 30/10s, media.list: 7/1s}
storage: {bucket: shard-tests}
limits: {transitions_per_cycle: 100, bytes_per_cycle: 10GiB, concurrency: 4}
"""


def kaltura_ids(n: int, seed: int = 7) -> list[str]:
    """Ids shaped as Kaltura's (``0_`` and 8 lower-case letters or digits)."""
    rng = random.Random(seed)
    alphabet = string.ascii_lowercase + string.digits
    return [f"0_{''.join(rng.choice(alphabet) for _ in range(8))}" for _ in range(n)]


@pytest.mark.parametrize("entry_id", ["0_abc12345", "1_zz", "0_ü", ""])
def test_the_slot_is_the_first_eight_bytes_of_sha256_modulo_n(entry_id: str) -> None:
    number = int(hashlib.sha256(entry_id.encode()).hexdigest()[:16], 16)
    for n in (1, 2, 3, 7, 1024):
        assert slot(entry_id, n) == number % n


def test_the_slot_is_the_same_in_another_python_process() -> None:
    # hash() is salted per process; the split must not be.
    ids = kaltura_ids(50)
    import subprocess
    import sys
    code = ("import sys; from policies.shards import slot; "
            "print(','.join(str(slot(i, 3)) for i in sys.argv[1:]))")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code, *ids], capture_output=True, text=True,
                         cwd=root, env={"PYTHONHASHSEED": "12345", "PATH": ""}, check=True)
    assert out.stdout.strip() == ",".join(str(slot(i, 3)) for i in ids)


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_the_shards_of_a_set_are_disjoint_and_cover_every_entry(count: int) -> None:
    ids = kaltura_ids(3000)
    owners = {entry_id: [i for i in range(count) if Shard(i, count).owns(entry_id)]
              for entry_id in ids}
    assert all(len(found) == 1 for found in owners.values())
    sizes = [sum(1 for found in owners.values() if found == [i]) for i in range(count)]
    # Even enough that a shard's flavor calls scale with its share (3000/count ± 20 %).
    assert all(abs(size - 3000 / count) < 0.2 * 3000 / count for size in sizes), sizes


def test_an_unsharded_run_owns_everything_under_the_historical_lease() -> None:
    assert WHOLE == Shard(0, 1) == parse_shard("0/1")
    assert all(WHOLE.owns(i) for i in kaltura_ids(100))
    assert WHOLE.lease_name == LEASE_NAME == "lease.json" and WHOLE.label == ""
    assert Shard(2, 3).lease_name == "lease-2-of-3.json" and Shard(2, 3).label == "2/3"


@pytest.mark.parametrize("name, shard", [
    ("lease.json", WHOLE), ("lease-0-of-3.json", Shard(0, 3)), ("lease-9-of-10.json", Shard(9, 10)),
    ("lease-3-of-3.json", None), ("lease-0-of-0.json", None), ("lease.json.expired-ab12", None),
    ("lease-a-of-b.json", None), ("leases.json", None),
])
def test_lease_names_are_read_back_as_their_shard(name: str, shard: Shard | None) -> None:
    assert shard_of_lease(name) == shard
    if shard is not None:
        assert shard_of_lease(shard.lease_name) == shard


@pytest.mark.parametrize("text", ["3/3", "-1/2", "a/b", "0/0", "1", "", "0/2000", "1/2/3"])
def test_bad_shards_are_refused_in_one_line_naming_the_fix(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_shard(text)
    message = str(caught.value)
    assert "\n" not in message and "--shard I/N" in message


def test_a_pod_ordinal_and_a_count_make_the_shard() -> None:
    assert shard_of_pod("karchive-2", "3") == Shard(2, 3)
    assert shard_of_pod("karchive-shards-0", " 4 ") == Shard(0, 4)
    with pytest.raises(ValueError, match="ends in no ordinal"):
        shard_of_pod("karchive", "3")
    with pytest.raises(ValueError, match="is not a shard"):
        shard_of_pod("karchive-3", "3")  # more replicas than KARCHIVE_SHARDS says
    with pytest.raises(ValueError, match="KARCHIVE_SHARDS"):
        shard_of_pod("karchive-0", "three")


def test_the_flag_wins_then_the_environment_then_the_pod_name() -> None:
    env = {"KARCHIVE_SHARD": "1/2", "KARCHIVE_SHARDS": "3", "KARCHIVE_POD_NAME": "k-2"}
    assert shard_from("0/5", env, "host-1") == Shard(0, 5)
    assert shard_from(None, env, "host-1") == Shard(1, 2)
    assert shard_from(None, {**env, "KARCHIVE_SHARD": ""}, "host-1") == Shard(2, 3)
    assert shard_from(None, {"KARCHIVE_SHARDS": "3"}, "karchive-1") == Shard(1, 3)
    assert shard_from(None, {}, "karchive-1") == WHOLE


def test_a_shard_runs_on_its_share_of_the_partner_wide_budgets() -> None:
    policy = parse_policy(POLICY, "policy.yaml", environ={})
    shares = [Shard(i, 3).share(policy) for i in range(3)]
    for share in shares:
        assert share.kaltura.rate_for("media", "list") == Rate(7 / 3, 1.0)
        assert share.kaltura.rate_for("flavorasset", "list") == Rate(10.0, 10.0)
        assert share.kaltura.rate_for("media", "delete") == Rate(35 / 3, 10.0)
        assert share.limits.concurrency == 4  # one process's memory: kept whole
        assert share.rules == policy.rules and share.storage == policy.storage
    # The parts add up to the policy's budget, the first shards taking the remainder.
    assert [s.limits.transitions_per_cycle for s in shares] == [34, 33, 33]
    assert sum(s.limits.bytes_per_cycle for s in shares) == policy.limits.bytes_per_cycle
    assert WHOLE.share(policy) is policy


def test_two_entries_of_a_part_of_zero_still_add_up() -> None:
    assert [Shard(i, 4).part(2) for i in range(4)] == [1, 1, 0, 0]
    assert [Shard(i, 4).part(0) for i in range(4)] == [0, 0, 0, 0]


@pytest.mark.parametrize("command", ["run", "plan", "apply"])
@pytest.mark.parametrize("text", ["3/3", "-1/2", "a/b", "0/0"])
def test_every_command_refuses_a_bad_shard_in_one_line_with_exit_1(
    command: str, text: str, tmp_path: Path
) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([command, "-f", str(tmp_path / "absent.yaml"), f"--shard={text}"])
    lines = err.getvalue().splitlines()
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("karchive: error: ")
    assert "is not a shard" in lines[0] and "Traceback" not in err.getvalue()


def test_a_bad_shard_count_in_the_environment_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KARCHIVE_SHARDS", "3")
    monkeypatch.setenv("KARCHIVE_POD_NAME", "karchive")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["plan", "-f", str(tmp_path / "absent.yaml")])
    assert code == 1 and err.getvalue().count("\n") == 1
    assert "ends in no ordinal" in err.getvalue()
