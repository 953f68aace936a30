"""One actor per archive, and plans for one target: ``karchive apply`` against the sandbox.

apply takes the daemon's lease or refuses in one line; it gives it back on every way out; a
signal stops it at a safe point; a saved plan is refused against another partner, archive or
prefix; a closed standard input is no answer. Real subprocesses where the process boundary
matters (signals, two applies at once), the real lease over moto.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from apply_world import TAG_ARCHIVED, TAG_REPLACED, World

from controller.adapters.storage.lease import Lease, _process_scope

LEASE_KEY = "karchive/lease.json"


def _spawn(world: World, *extra: str, stdin: int | None = subprocess.DEVNULL
           ) -> subprocess.Popen[str]:
    env = {**os.environ, **world.sandbox.env()}
    return subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "apply", "-f", str(world.policy), "-q",
         "--journal", str(world.journal), "--wait", "60", *extra],
        cwd=world.tmp, env=env, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def _lease_object(world: World) -> dict | None:
    try:
        body = world.s3.get_object(Bucket=world.sandbox.bucket, Key=LEASE_KEY)["Body"].read()
    except world.s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)


def test_apply_refuses_in_one_line_while_another_holds_the_lease(make_world) -> None:
    world = make_world()
    entry_id = world.candidates(1)[0]
    world.write_policy(world.ids_rule([entry_id], "archived"), storage_class="STANDARD")
    other = Lease(world.s3, world.sandbox.bucket, LEASE_KEY, holder="elsewhere-4242-cafe",
                  duration=120)
    assert other.acquire()
    code, out = world.apply()
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("karchive: error:")]
    assert len(errors) == 1 and "holds the lease" in errors[0] and "elsewhere-4242-cafe" in \
        errors[0], out
    assert TAG_ARCHIVED not in world.tags(entry_id)  # nothing done
    assert _lease_object(world)["holder"] == "elsewhere-4242-cafe"  # and the lease untouched
    other.release()
    world.converge()
    assert TAG_ARCHIVED in world.tags(entry_id)
    assert _lease_object(world) is None  # given back on the way out


def test_a_lease_left_by_a_killed_process_of_this_host_is_taken_over(make_world) -> None:
    world = make_world()
    entry_id = world.candidates(1)[0]
    world.write_policy(world.ids_rule([entry_id], "archived"), storage_class="STANDARD")
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = Lease(world.s3, world.sandbox.bucket, LEASE_KEY,
                 holder=f"{socket.gethostname()}-{gone.pid}-{_process_scope()}-dead",
                 duration=600)
    assert dead.acquire()  # and never released: a kill -9
    world.converge()
    assert TAG_ARCHIVED in world.tags(entry_id)


def test_two_applies_at_once_one_acts_and_the_other_is_refused(make_world) -> None:
    world = make_world()
    ids = world.candidates(4)
    world.write_policy(world.ids_rule(ids, "placeholder"), concurrency=2)
    # The first holds the lease from before it observes: here, while it asks for a yes.
    first = _spawn(world, stdin=subprocess.PIPE)
    assert first.stdout is not None and first.stdin is not None
    seen = ""
    while "Only 'yes' will be accepted" not in seen:
        char = first.stdout.read(1)
        assert char, f"the first apply ended before asking: {seen}"
        seen += char
    second = _spawn(world, "--auto-approve")
    _, second_err = second.communicate(timeout=120)
    assert second.returncode == 1 and "holds the lease" in second_err
    assert second_err.count("\n") == 1, second_err
    first.stdin.write("yes\n")
    first.stdin.flush()
    first.communicate(timeout=300)
    assert first.returncode == 0
    for entry_id in ids:
        assert {TAG_ARCHIVED, TAG_REPLACED} <= world.tags(entry_id)


def test_sigterm_during_apply_stops_at_a_safe_point_and_says_so(make_world) -> None:
    world = make_world()
    ids = world.candidates(12)
    world.write_policy(world.ids_rule(ids, "placeholder"), concurrency=1)
    process = _spawn(world, "--auto-approve")
    assert process.stderr is not None
    while ": done" not in (line := process.stderr.readline()):
        assert line, "apply ended before finishing an item"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert "SIGTERM: stopping at the next safe point" in err
    assert "Stopped by SIGTERM at a safe point" in out
    # The rest was never begun: one line for all of them, beside the summary.
    assert "deferred: karchive was stopping before they started" in out
    assert _lease_object(world) is None
    # Every step it began was finished and journalled: no intent without its result.
    lines = [json.loads(line) for path in sorted(world.journal.rglob("*.jsonl"))
             for line in path.read_text().splitlines()]
    opened: dict[tuple[str, str, str], int] = {}
    for record in lines:
        step = (record["entry_id"], record["action"], record["step"])
        opened[step] = opened.get(step, 0) + (1 if record["result"] == "intent" else -1)
    assert [step for step, n in opened.items() if n > 0] == []
    world.converge()
    for entry_id in ids:
        assert {TAG_ARCHIVED, TAG_REPLACED} <= world.tags(entry_id)


def test_sigterm_before_apply_acts_stops_it_at_once_and_gives_the_lease_back(make_world
                                                                           ) -> None:
    world = make_world()
    entry_id = world.candidates(1)[0]
    world.write_policy(world.ids_rule([entry_id], "archived"), storage_class="STANDARD")
    process = _spawn(world, stdin=subprocess.PIPE)
    assert process.stdout is not None
    seen = ""
    while "Only 'yes' will be accepted" not in seen:
        char = process.stdout.read(1)
        assert char, seen
        seen += char
    assert _lease_object(world) is not None  # held while it asks
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines() == ["karchive: stopped by SIGTERM before anything was changed"]
    assert _lease_object(world) is None and TAG_ARCHIVED not in world.tags(entry_id)


def test_a_saved_plan_is_refused_against_another_target(make_world) -> None:
    world = make_world()
    entry_id = world.candidates(1)[0]
    world.write_policy(world.ids_rule([entry_id], "archived"), storage_class="STANDARD")
    saved = world.tmp / "plan.json"
    code, _ = world.plan("--out", str(saved))
    assert code == 0 and json.loads(saved.read_text())["target"]["prefix"] == "karchive/"
    world.policy.write_text(world.policy.read_text().replace("prefix: karchive/",
                                                             "prefix: elsewhere/"))
    code, out = world.apply(str(saved))
    assert code == 1
    assert [line for line in out.splitlines() if "was made for" in line] == [
        f"karchive: error: {saved} was made for partner {world.sandbox.env()['KALTURA_PARTNER_ID']}"
        f", s3://{world.sandbox.bucket}/karchive/, not for this policy's partner "
        f"{world.sandbox.env()['KALTURA_PARTNER_ID']}, s3://{world.sandbox.bucket}/elsewhere/; "
        "plan again with this policy"]
    assert world.object_keys("elsewhere/") == [] and TAG_ARCHIVED not in world.tags(entry_id)


def test_apply_with_standard_input_closed_is_no_answer(make_world) -> None:
    world = make_world()
    entry_id = world.candidates(1)[0]
    world.write_policy(world.ids_rule([entry_id], "archived"), storage_class="STANDARD")
    env = {**os.environ, **world.sandbox.env()}
    done = subprocess.run(
        ["sh", "-c", 'exec 0<&- "$@"', "sh", sys.executable, "-m", "controller.cli", "apply",
         "-f", str(world.policy), "-q", "--journal", str(world.journal)],
        cwd=world.tmp, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "no answer on standard input" in done.stderr and "Apply cancelled." in done.stdout
    assert TAG_ARCHIVED not in world.tags(entry_id)


def test_policy_validate_needs_no_environment_and_with_env_names_every_missing_one(
        tmp_path: Path) -> None:
    policy = Path(__file__).parents[2] / "policy.yaml"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(policy.parent)}
    command = [sys.executable, "-m", "controller.cli", "policy", "validate", str(policy)]
    lax = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path)
    assert lax.returncode == 0, lax.stderr
    assert "OK" in lax.stdout
    assert lax.stderr.startswith("note: policy.yaml uses KALTURA_ADMIN_SECRET, "
                                 "KALTURA_PARTNER_ID, KALTURA_SERVICE_URL, KARCHIVE_BUCKET")
    strict = subprocess.run([*command, "--env"], env=env, capture_output=True, text=True,
                            cwd=tmp_path)
    assert strict.returncode == 1
    assert strict.stderr.count("\n") == 1 and "KALTURA_ADMIN_SECRET, KALTURA_PARTNER_ID, " \
        "KALTURA_SERVICE_URL, KARCHIVE_BUCKET not set" in strict.stderr
    # A real mistake is still one, environment or not.
    broken = tmp_path / "broken.yaml"
    broken.write_text(policy.read_text().replace("days: 7 ", "days: true "))
    bad = subprocess.run([*command[:-1], str(broken)], env=env, capture_output=True, text=True,
                         cwd=tmp_path)
    assert bad.returncode == 1 and "storage.restore.days: True is not a number" in bad.stderr
