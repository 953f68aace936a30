"""``karchive plan`` and ``karchive policy validate`` through the command line, against the sandbox.

The expected plan is computed independently from the emulator's records (tags, statuses, the
catalogue's legacy kinds), not from the planner.
"""

from __future__ import annotations

import json

import pytest
from test_observe_support import aws_env, bucket_listing, calls, write_policy, writes

from controller.cli import main
from sandbox.catalogue import LegacyKind

READY = 2


@pytest.fixture
def policy_file(tmp_path, sandbox, monkeypatch):
    aws_env(monkeypatch, sandbox)
    return write_policy(tmp_path, sandbox)


def _expected_archives(sandbox) -> set[str]:
    """Entries the 'lectures' rule archives: READY, tagged lecture, not exempt, a READY
    original, and no PROVEN current copy. Of the Princeton states, a copy nobody verified
    (archived, object without tag, size mismatch) is archived — verified against the original
    first, adopted when it matches — and a tag without an object is archived again; the others
    are placeholders (unproven here, so reported) or reported."""
    settled = (LegacyKind.PLACEHOLDER, LegacyKind.DELETED_WITHOUT_ARCHIVED)
    legacy = {i for kind in settled for i in sandbox.summary.legacy_ids(kind)}
    found = set()
    for e in sandbox.backend.all_entries():
        tags = {t.strip().lower() for t in e.tags.split(",")}
        if e.status != READY or e.display_in_search < 0 or e.moderation_status in (1, 3):
            continue
        if "lecture" not in tags or "archive_exempt" in tags or e.id in legacy:
            continue
        flavors = sandbox.backend.flavors_by_entry.get(e.id, ())
        if any(f.is_original and f.status == READY for f in flavors):
            found.add(e.id)
    return found


def test_plan_matches_the_catalogue_and_writes_nothing(sandbox, s3, policy_file, tmp_path,
                                                       capsys):
    before_calls, before_bucket = calls(sandbox), bucket_listing(s3, sandbox.bucket)
    out = tmp_path / "plan.json"
    code = main(["plan", "-f", str(policy_file), "--json", "--out", str(out),
                 "--detailed-exitcode", "--quiet"])
    assert code == 2
    document = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == document
    assert document["format_version"] == 4
    items = document["items"]
    archives = {i["entry_id"] for i in items if i["action"] == "archive"}
    assert archives == _expected_archives(sandbox)
    unhealthy = {i["entry_id"] for i in items if i["action"] == "unhealthy"}
    broken = set(sandbox.summary.legacy_ids(LegacyKind.DELETED_WITHOUT_ARCHIVED))
    visible = {e.id for e in sandbox.backend.all_entries() if e.status != 3}
    assert broken & visible <= unhealthy
    assert all(i["fingerprint"] and i["rule"] for i in items if i["action"] == "archive")
    # Invariant 5: nothing written, on either side.
    assert writes(before_calls, calls(sandbox)) == {}
    assert bucket_listing(s3, sandbox.bucket) == before_bucket


def test_plan_prints_a_listing_and_the_summary_line(policy_file, capsys):
    assert main(["plan", "-f", str(policy_file), "--no-color", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "\x1b[" not in text
    lines = text.rstrip("\n").splitlines()
    assert lines[-1].startswith("Plan: ")
    assert any(line.startswith("+ archive 0_") for line in lines)


def test_plan_with_nothing_to_do_says_no_changes_and_exits_0(sandbox, tmp_path, monkeypatch,
                                                              capsys):
    aws_env(monkeypatch, sandbox)
    path = write_policy(tmp_path, sandbox, rules="rules: []\n")
    assert main(["plan", "-f", str(path), "--detailed-exitcode", "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("No changes.")


def test_plan_shows_progress_on_stderr_not_stdout(policy_file, capsys):
    main(["plan", "-f", str(policy_file), "--json"])
    captured = capsys.readouterr()
    assert "entries" in captured.err
    json.loads(captured.out)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t + "bogus: 1\n", ": bogus: "),
        (lambda t: t.replace("state: archived", "state: archive"), "rules[0].state"),
        (lambda t: t.replace("tags: {any: [lecture]}", "tags: {any: [lecture]"), "YAML"),
        (lambda t: t.replace("version: 1", "version: 2"), "version"),
    ],
)
def test_an_invalid_policy_is_one_line_and_exit_1(policy_file, capsys, edit, message):
    policy_file.write_text(edit(policy_file.read_text()))
    for argv in (["plan", "-f", str(policy_file)], ["policy", "validate", str(policy_file)]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert err.startswith(f"karchive: error: {policy_file}:")
        assert message in err


def test_policy_validate_says_ok_with_the_rule_count(policy_file, capsys):
    assert main(["policy", "validate", str(policy_file)]) == 0
    assert capsys.readouterr().out == "policy.yaml: OK (1 rule)\n"


def test_a_missing_bucket_fails_the_plan_with_one_line(sandbox, tmp_path, monkeypatch, capsys):
    aws_env(monkeypatch, sandbox)
    path = write_policy(tmp_path, sandbox, bucket="missing-bucket-x")
    assert main(["plan", "-f", str(path), "--detailed-exitcode", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "missing-bucket-x" in captured.err and "does not exist" in captured.err


def test_a_wrong_secret_fails_the_plan_without_showing_it(sandbox, tmp_path, monkeypatch,
                                                          capsys):
    aws_env(monkeypatch, sandbox)
    path = write_policy(tmp_path, sandbox)
    path.write_text(path.read_text().replace(sandbox.env()["KALTURA_ADMIN_SECRET"],
                                             "wrong-secret-123"))
    assert main(["plan", "-f", str(path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "admin_secret" in err and "wrong-secret-123" not in err


def test_an_unwritable_out_file_is_an_error(policy_file, tmp_path, capsys):
    code = main(["plan", "-f", str(policy_file), "--quiet", "--out",
                 str(tmp_path / "no-such-dir" / "plan.json")])
    assert code == 1
    assert "cannot write the plan" in capsys.readouterr().err
