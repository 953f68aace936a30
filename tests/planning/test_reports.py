"""``karchive list | count | health | stats`` against the sandbox, checked against its records."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import UTC, datetime

import pytest
from test_observe_support import aws_env, calls, write_policy, writes

from controller.cli import main
from controller.cli.reports import LIST_COLUMNS
from sandbox.catalogue import LegacyKind

PRINCETON_LIST = ["last_played_date", "plays", "entry_id", "status", "archived_to_s3",
                  "flavors_deleted", "created_date", "created", "creator_id", "category_ids",
                  "categories"]


@pytest.fixture
def policy_file(tmp_path, sandbox, monkeypatch):
    aws_env(monkeypatch, sandbox)
    return write_policy(tmp_path, sandbox)


def _visible(sandbox):
    return [e for e in sandbox.backend.all_entries()
            if e.status != 3 and e.display_in_search >= 0 and e.moderation_status not in (1, 3)]


def _run(capsys, *argv):
    code = main([*argv, "--quiet"])
    return code, capsys.readouterr().out


def test_list_keeps_the_princeton_columns_first_and_adds_state(policy_file, sandbox, capsys):
    code, out = _run(capsys, "list", "-f", str(policy_file), "--tag", "lecture",
                     "--tag", "!archive_exempt")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out), delimiter="\t"))
    header = out.splitlines()[0].split("\t")
    assert header[: len(PRINCETON_LIST)] == PRINCETON_LIST
    assert tuple(header) == LIST_COLUMNS
    expected = {e.id for e in _visible(sandbox)
                if "lecture" in {t.strip() for t in e.tags.split(",")}
                and "archive_exempt" not in e.tags}
    assert {r["entry_id"] for r in rows} == expected
    row = rows[0]
    record = sandbox.backend.get_entry(row["entry_id"])
    assert row["created"] == str(record.created_at)
    day = datetime.fromtimestamp(record.created_at, UTC).strftime("%Y-%m-%d")
    assert row["created_date"] == day
    assert row["desired"] == "archived"  # the rule 'lectures'


def test_list_in_csv_and_json_give_the_same_entries(policy_file, capsys):
    _, tsv = _run(capsys, "list", "-f", str(policy_file), "--category", "Departments")
    _, as_csv = _run(capsys, "list", "-f", str(policy_file), "--category", "Departments",
                     "--format", "csv")
    _, as_json = _run(capsys, "list", "-f", str(policy_file), "--category", "Departments",
                      "--format", "json")
    ids = [r["entry_id"] for r in csv.DictReader(io.StringIO(tsv), delimiter="\t")]
    assert ids == [r["entry_id"] for r in csv.DictReader(io.StringIO(as_csv))]
    assert ids == [r["entry_id"] for r in json.loads(as_json)]
    assert ids


def test_count_agrees_with_the_catalogue_and_writes_nothing(policy_file, sandbox, capsys):
    before = calls(sandbox)
    code, out = _run(capsys, "count", "-f", str(policy_file), "--status", "ready")
    assert code == 0
    assert int(out) == sum(1 for e in _visible(sandbox) if e.status == 2)
    assert writes(before, calls(sandbox)) == {}


def test_count_of_ids_asks_kaltura_for_those_ids_only(policy_file, sandbox, capsys):
    ids = [e.id for e in _visible(sandbox)[:3]]
    argv = ["count", "-f", str(policy_file)]
    for entry_id in ids:
        argv += ["--id", entry_id]
    assert _run(capsys, *argv) == (0, "3\n")


def test_health_reports_every_broken_invariant_and_exits_1(policy_file, sandbox, capsys):
    code, out = _run(capsys, "health", "-f", str(policy_file))
    assert code == 1
    rows = {r["entry_id"]: r for r in csv.DictReader(io.StringIO(out), delimiter="\t")}
    summary = sandbox.summary
    for entry_id in summary.legacy_ids(LegacyKind.DELETED_WITHOUT_ARCHIVED):
        if entry_id in rows and sandbox.backend.get_entry(entry_id).status == 2:
            assert rows[entry_id]["status-ok"] == "False"
            assert "flavors_deleted" in rows[entry_id]["message"]
    for entry_id in summary.legacy_ids(LegacyKind.SIZE_MISMATCH):
        if entry_id in rows and sandbox.backend.get_entry(entry_id).status == 2:
            assert rows[entry_id]["size_match"] == "False"
    not_ready = [e.id for e in _visible(sandbox) if e.status != 2]
    assert not_ready and all(rows[i]["status-ok"] == "False" for i in not_ready)


def test_health_of_healthy_entries_exits_0(policy_file, sandbox, capsys):
    legacy = summary_ids(sandbox)
    healthy = next(e.id for e in _visible(sandbox) if e.status == 2 and e.id not in legacy)
    code, out = _run(capsys, "health", "-f", str(policy_file), "--id", healthy)
    assert code == 0
    assert out.splitlines()[1].split("\t")[1] == "True"


def summary_ids(sandbox):
    return {i for ids in sandbox.summary.legacy.values() for i in ids}


def test_stats_count_years_placeholders_and_storage(policy_file, sandbox, capsys):
    code, out = _run(capsys, "stats", "-f", str(policy_file), "--format", "json")
    assert code == 0
    figures = json.loads(out)
    visible = _visible(sandbox)
    years = Counter(datetime.fromtimestamp(e.created_at, UTC).strftime("%Y") for e in visible)
    assert figures["by_created_year"] == dict(years)
    never = sum(1 for e in visible if not e.last_played_at)
    assert figures["by_last_played_year"].get("never", 0) == never
    stored = sum(f.size_in_bytes for e in visible
                 for f in sandbox.backend.flavors_by_entry.get(e.id, ()) if f.status != 3)
    assert figures["kaltura_bytes"] == stored
    assert figures["placeholders"] >= 1
    assert figures["bytes_policy_would_free"] == 0  # the rule archives, it replaces nothing


def test_a_bad_filter_is_a_one_line_error(policy_file, capsys):
    assert main(["list", "-f", str(policy_file), "--unplayed-for", "3 fortnights"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("karchive: error: --unplayed-for") and err.count("\n") == 1
