"""``karchive owners -f policy.yaml < list.tsv``: the command line over a real slapd."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from ldap_people import SUFFIX
from slapd import Slapd

from controller.cli import main

LIST_TSV = (
    "entry_id\tstatus\tcreator_id\n"
    "0_aaaaaaaa\tREADY\talice@example.edu\n"
    "0_bbbbbbbb\tREADY\tdora@example.edu\n"
    "0_cccccccc\tREADY\tghost@example.edu\n"
)


def write_policy(tmp_path: Path, directory: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "version: 1\n"
        'kaltura: {partner_id: 1, service_url: "http://127.0.0.1:1", admin_secret: s}\n'
        "storage: {bucket: karchive-test}\n" + directory
    )
    return path


def run_owners(monkeypatch: pytest.MonkeyPatch, policy: Path, stdin: str) -> tuple[int, str]:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    monkeypatch.setattr("sys.stdout", out)
    return main(["owners", "-f", str(policy)]), out.getvalue()


def test_the_owners_command_appends_status_name_and_org_unit(
    slapd_server: Slapd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = write_policy(
        tmp_path, f'directory: {{url: "{slapd_server.url}", base: "{SUFFIX}", timeout: 5}}\n'
    )
    code, out = run_owners(monkeypatch, policy, LIST_TSV)
    rows = [line.split("\t") for line in out.splitlines()]
    assert code == 0
    assert rows[0] == ["entry_id", "status", "creator_id", "status", "name", "org_unit"]
    by_owner = {row[2]: row[3] for row in rows[1:]}
    assert by_owner == {
        "alice@example.edu": "active",
        "dora@example.edu": "inactive",
        "ghost@example.edu": "inactive",
    }


def test_a_policy_without_a_directory_section_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write_policy(tmp_path, "")
    code, out = run_owners(monkeypatch, policy, LIST_TSV)
    err = capsys.readouterr().err
    assert code == 1
    assert out == ""
    assert "no 'directory:' section" in err and len(err.strip().splitlines()) == 1
