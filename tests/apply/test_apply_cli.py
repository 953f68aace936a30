"""`karchive apply` on the command line: the confirmation, JSON progress, the shipped journal,
and a plan file that cannot be read."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from apply_world import TAG_ARCHIVED

from controller.cli import main


def _run(world, answer: str | None, *extra: str, monkeypatch: pytest.MonkeyPatch):
    if answer is not None:
        monkeypatch.setattr("builtins.input", lambda prompt: answer)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["apply", "-f", str(world.policy), "-q", "--journal", str(world.journal),
                     *extra])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("answer", ["no", "y", "YES", ""])
def test_only_yes_is_accepted_and_anything_else_changes_nothing(make_world, monkeypatch, answer):
    world = make_world()
    entry_id = world.candidates(1)[0]
    world.write_policy(world.ids_rule([entry_id], "archived"), storage_class="STANDARD")
    code, out, _ = _run(world, answer, monkeypatch=monkeypatch)
    assert code == 1
    assert "Apply cancelled." in out
    assert TAG_ARCHIVED not in world.tags(entry_id)
    assert world.object_keys() == []


def test_yes_applies_prints_json_progress_and_ships_the_journal(make_world, monkeypatch):
    world = make_world()
    ids = world.candidates(2)
    world.write_policy(world.ids_rule(ids, "archived"), storage_class="STANDARD")
    code, out, err = _run(world, "yes", "--json-progress", monkeypatch=monkeypatch)
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert {(line["entry_id"], line["result"]) for line in lines} == {(i, "done") for i in ids}
    assert all(TAG_ARCHIVED in world.tags(i) for i in ids)
    shipped = world.object_keys("karchive/log/")
    assert len(shipped) == 1 and shipped[0].endswith(".jsonl")
    body = world.s3.get_object(Bucket=world.sandbox.bucket, Key=shipped[0])["Body"].read()
    records = [json.loads(line) for line in body.decode().splitlines()]
    assert {r["step"] for r in records} >= {"upload", "verify", "tag"}
    assert "Signature" not in body.decode() and "ks=" not in body.decode()


def test_an_unreadable_plan_file_is_one_line_and_exit_1(make_world, monkeypatch, tmp_path):
    world = make_world()
    world.write_policy(world.ids_rule(world.candidates(1), "archived"))
    bad = tmp_path / "plan.json"
    bad.write_text('{"format_version": 99, "items": []}')
    code, _, err = _run(world, None, str(bad), "--auto-approve", monkeypatch=monkeypatch)
    assert code == 1
    assert err.count("\n") == 1 and "format_version" in err


def test_deferred_items_are_one_line_per_reason_not_one_each(make_world, monkeypatch):
    world = make_world()
    ids = world.candidates(3)
    world.write_policy(world.ids_rule(ids, "archived"), storage_class="STANDARD")
    world.policy.write_text(world.policy.read_text().replace(
        "limits:\n", "limits:\n  transitions_per_cycle: 1\n"))
    code, out, err = _run(world, "yes", monkeypatch=monkeypatch)
    assert code == 0, err
    assert "2 deferred to later cycles by limits.transitions_per_cycle" in out.splitlines()
    assert "deferred" not in err  # no line per deferred item
    assert sum(line.endswith(": done") or ": done:" in line for line in err.splitlines()) == 1
    assert "This cycle: 1 of 3 changes run" in out  # the plan said so before
