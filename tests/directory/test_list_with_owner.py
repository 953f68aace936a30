"""``karchive list --with-owner``: the sandbox's owners looked up in a real slapd."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from slapd import DISABLED, ENABLED, SUFFIX, Person, Slapd

from controller.cli import main

POLICY = """\
version: 1
kaltura:
  service_url: ${KALTURA_SERVICE_URL}
  partner_id: ${KALTURA_PARTNER_ID}
  admin_secret: ${KALTURA_ADMIN_SECRET}
storage:
  bucket: ${KARCHIVE_BUCKET}
  endpoint_url: ${AWS_ENDPOINT_URL}
"""


@pytest.fixture
def catalogue(make_sandbox: Callable[..., Any],
              monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, list[str]]]:
    sandbox = make_sandbox(entries=30, seed=3, max_size=100_000)
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    owners = sorted({e.user_id for e in sandbox.backend.all_entries() if e.user_id})
    yield sandbox, owners


def run_list(policy: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[dict[str, str]]]:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    code = main(["list", "-f", str(policy), "--with-owner", "--quiet"])
    return code, list(csv.DictReader(io.StringIO(out.getvalue()), delimiter="\t"))


def test_list_with_owner_adds_each_owners_directory_standing(
    catalogue: tuple[Any, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, owners = catalogue
    uids = [owner.split("@")[0] for owner in owners]
    # Every other owner is still here; the rest were disabled when they left.
    people = [Person(uid, f"Name {uid}", f"Name {uid}", "Physics",
                     ENABLED if i % 2 == 0 else DISABLED) for i, uid in enumerate(uids)]
    expected = {owner: "active" if i % 2 == 0 else "inactive" for i, owner in enumerate(owners)}
    with Slapd(people) as server:
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY + f'directory: {{url: "{server.url}", base: "{SUFFIX}"}}\n')
        code, rows = run_list(policy, monkeypatch)
    assert code == 0 and rows
    owner_of = {e.id: e.user_id for e in sandbox.backend.all_entries()}
    for row in rows:
        assert row["owner_status"] == expected[owner_of[row["entry_id"]]], row
    by_status = {row["owner_status"] for row in rows}
    assert by_status == {"active", "inactive"}
    named = [row for row in rows if row["owner_status"] == "active"]
    assert all(row["owner_name"].startswith("Name ") and row["owner_org_unit"] == "Physics"
               for row in named)


def test_list_with_owner_and_the_directory_down_says_unknown(
    catalogue: tuple[Any, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY + 'directory: {url: "ldap://127.0.0.1:9", base: "o=x", '
                               "timeout: 1, retries: 0}\n")
    code, rows = run_list(policy, monkeypatch)
    assert code == 0 and rows
    assert {row["owner_status"] for row in rows} == {"unknown"}
