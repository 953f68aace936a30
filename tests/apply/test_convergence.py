"""The seeded catalogue, legacy and broken states included, converges under the repo's policy.

A sandbox of 400 entries, seed 5 (every legacy and broken kind of the catalogue is in it; videos
capped at 2 MiB to keep the suite short), with the Princeton tool's bucket; the project's own
``policy.yaml`` with the sandbox's environment, under both
``storage.layout`` settings. ``karchive apply`` runs through its CLI entry point over real HTTP;
after each apply invariants 1-4 of design.md are checked against the emulator's and the
bucket's own records; after at most three applies and the thaw delay ``plan
--detailed-exitcode`` is 0. The property "every item plan offers is one apply can carry out on
an unchanged world" is checked on the way: an apply right after a plan fails no item.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import time
from pathlib import Path
from typing import Any

import pytest
from apply_world import TAG_ARCHIVED, TAG_REPLACED, MiB

from controller.cli import main
from sandbox.catalogue import LegacyKind
from sandbox.runner import Sandbox
from sandbox.s3 import _moto_key

REPO_POLICY = Path(__file__).parents[2] / "policy.yaml"
RESTORE_DELAY = 5.0


def _run(args: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue() + err.getvalue()


def _truth(sandbox: Sandbox) -> dict[str, str]:
    """entry id -> SHA-256 of its real video, before karchive touched anything: the original
    flavor's, or, where the old tool swapped it out or lost it, the copy's it left."""
    backend, summary = sandbox.backend, sandbox.summary
    objects = {o.key: o for o in summary.objects}
    elsewhere = {*summary.legacy_ids(LegacyKind.PLACEHOLDER),
                 *summary.legacy_ids(LegacyKind.EMPTIED_BY_REPLACE),
                 *summary.legacy_ids(LegacyKind.EMPTIED_BY_RESTORE)}
    truth = {}
    for entry in backend.all_entries():
        if entry.id in elsewhere:
            content = objects[entry.id].content
            truth[entry.id] = hashlib.sha256(content.read(0, content.size)).hexdigest()
            continue
        for flavor in backend.flavors_by_entry.get(entry.id, ()):
            if flavor.is_original and flavor.status == 2:
                truth[entry.id] = hashlib.sha256(
                    flavor.content.read(0, flavor.size_in_bytes)).hexdigest()
    return truth


def _bucket_shas(sandbox: Sandbox, s3: Any) -> dict[str, set[str]]:
    """entry id -> SHA-256 of every copy of its video in the bucket (both layouts), the bytes
    read from moto's own store (a GLACIER object holds them too; S3 only refuses the GET)."""
    found: dict[str, set[str]] = {}
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=sandbox.bucket)
    for key in (o["Key"] for page in pages for o in page.get("Contents", ())):
        parts = key.split("/")
        if len(parts) == 1 and "_" in key:
            entry_id = key
        elif len(parts) == 4 and parts[2] == "original":
            entry_id = parts[1]
        else:
            continue
        body = _moto_key(sandbox.bucket, key).value
        found.setdefault(entry_id, set()).add(hashlib.sha256(body).hexdigest())
    return found


def _invariants(sandbox: Sandbox, s3: Any, truth: dict[str, str], untouched: dict[str, Any]
                ) -> None:
    backend = sandbox.backend
    backend.tick()
    copies = _bucket_shas(sandbox, s3)
    lost = []
    for entry_id, sha in truth.items():
        in_kaltura = any(
            f.is_original and f.status == 2
            and hashlib.sha256(f.content.read(0, f.size_in_bytes)).hexdigest() == sha
            for f in backend.flavors_by_entry.get(entry_id, ()))
        if not (in_kaltura or sha in copies.get(entry_id, set())):
            lost.append(entry_id)
    assert lost == [], f"invariants 1-2: neither content nor copy for {lost}"
    # Invariant 3: what karchive does not understand is left exactly as it was.
    for entry_id, before in untouched.items():
        entry = backend.get_entry(entry_id)
        assert (entry.tags, entry.status) == before, entry_id
    # Invariant 4: no upload left open, and no entry with two copies of the same bytes.
    assert s3.list_multipart_uploads(Bucket=sandbox.bucket).get("Uploads", []) == []
    listed = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=sandbox.bucket, Prefix="karchive/") for o in page.get("Contents", ())
        if "/original/" in o["Key"]]
    per_entry: dict[str, int] = {}
    for key in listed:
        per_entry[key.split("/")[1]] = per_entry.get(key.split("/")[1], 0) + 1
    assert all(n <= len(copies[e]) for e, n in per_entry.items()), per_entry


@pytest.mark.parametrize("layout", ["entry-folder", "legacy"])
def test_the_seeded_catalogue_converges_under_the_repo_policy(
        make_sandbox: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    sandbox = make_sandbox(entries=400, seed=5, max_size=2 * MiB, restore_delay=RESTORE_DELAY,
                           conversion_delay=0.2)
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    policy = tmp_path / "policy.yaml"
    policy.write_text(REPO_POLICY.read_text(encoding="utf-8").replace(
        "layout: entry-folder", f"layout: {layout}"), encoding="utf-8")
    summary = sandbox.summary
    counts = {kind.value: len(summary.legacy_ids(kind)) for kind in LegacyKind}
    assert all(counts.values()), counts  # every legacy and broken state is in the catalogue
    truth = _truth(sandbox)
    untouched = {i: (sandbox.backend.get_entry(i).tags, sandbox.backend.get_entry(i).status)
                 for i in summary.legacy_ids(LegacyKind.DELETED_WITHOUT_ARCHIVED)}
    s3 = sandbox.s3_client()
    args = ["-f", str(policy), "-q"]
    outputs = []
    for _ in range(3):
        code, out = _run(["apply", *args, "--auto-approve", "--journal", str(tmp_path / "j"),
                          "--wait", "120"])
        outputs.append(out)
        # Every item the plan offered was one apply could carry out: none failed or refused.
        bad = [line for line in out.splitlines() if ": failed" in line or ": refused" in line]
        assert code == 0 and not bad, (bad, out[-1500:])
        _invariants(sandbox, s3, truth, untouched)
        time.sleep(RESTORE_DELAY + 1)
        code, out = _run(["plan", *args, "--detailed-exitcode"])
        if code == 0:
            break
    lines = [line for o in outputs for line in o.splitlines()
             if line.startswith(("Apply:", "Plan:"))]
    assert code == 0, (lines, out)
    # What each legacy state became: archived (adopted or archived again), restored, recovered.
    backend = sandbox.backend
    for entry_id in [*summary.legacy_ids(LegacyKind.EMPTIED_BY_REPLACE),
                     *summary.legacy_ids(LegacyKind.EMPTIED_BY_RESTORE)]:
        entry = backend.get_entry(entry_id)
        tags = {t.strip() for t in entry.tags.split(",")}
        assert entry.status == 2 and TAG_ARCHIVED in tags and TAG_REPLACED not in tags, entry_id
    for entry_id in summary.legacy_ids(LegacyKind.OBJECT_WITHOUT_TAG):
        assert TAG_ARCHIVED in backend.get_entry(entry_id).tags or \
            "archive_exempt" in backend.get_entry(entry_id).tags, entry_id
