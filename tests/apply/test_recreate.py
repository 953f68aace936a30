"""`karchive recreate` against the sandbox: a purged entry comes back as a new entry whose
metadata, content, default thumbnail, captions and attachments match the original's — from S3
(a Glacier copy thawed first: without --wait the command says so and exits 0) and from a
directory (by upload token); the mapping is recorded and a second run creates nothing."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from apply_world import MiB, World, sha_of

from controller.cli import main
from controller.compose import compose
from controller.runtime.journal import Journal
from policies.loader import load_policy
from reconcilers.purge import Purge


def _truth(world: World, entry_id: str) -> dict[str, Any]:
    entry = world.entry(entry_id)
    backend = world.backend
    with backend.lock:
        captions = sorted((c.language, c.label, c.format, c.file_ext, sha_of(c.content, c.size))
                          for c in backend.captions_by_entry.get(entry_id, []) if c.status == 2)
        attachments = sorted((a.filename, a.title, sha_of(a.content, a.size))
                             for a in backend.attachments_by_entry.get(entry_id, [])
                             if a.status == 2)
    tags = {t.strip() for t in entry.tags.split(",") if t.strip()} - {"archived_to_s3"}
    return {
        "name": entry.name, "description": entry.description, "tags": tags,
        "categories": entry.categories, "reference_id": entry.reference_id,
        "user_id": entry.user_id, "media_type": entry.media_type, "captions": captions,
        "attachments": attachments, "original": world.original_sha(entry_id),
        "thumb": world.default_thumb_sha(entry_id),
    }


def _recreate(world: World, entry_id: str, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["recreate", entry_id, "-f", str(world.policy), "--journal",
                     str(world.journal), "--poll", "0.2", "--thaw-poll", "0.5",
                     "--timeout", "60", *extra])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("backend", ["s3", "directory"])
def test_a_purged_entry_is_recreated_with_its_metadata_captions_and_attachments(
    make_world, tmp_path: Path, backend: str
):
    world = make_world(max_size=3 * MiB, restore_delay=1.0)
    root = tmp_path / "nas" if backend == "directory" else None
    if root is not None:
        root.mkdir()
    entry_id = world.purgeable(1)[0]
    truth = _truth(world, entry_id)
    assert truth["captions"] and truth["attachments"] and truth["thumb"] and truth["categories"]
    world.write_policy(world.ids_rule([entry_id], "deleted"), storage_class="GLACIER",
                       directory=root, extra="allow_delete: true")
    policy = load_policy(world.policy)
    ctx = compose(policy).context(Journal())
    Purge().run(entry_id, ctx)
    assert world.entry(entry_id).status == 3

    if root is None:  # a Glacier copy: thawed first; without --wait, a message and exit 0
        code, out, err = _recreate(world, entry_id)
        assert code == 0 and out == "" and "thaw" in err and "--wait" in err
        code, out, err = _recreate(world, entry_id, "--wait")
    else:
        code, out, err = _recreate(world, entry_id)
    assert code == 0, err
    new_id = out.strip()
    assert new_id and new_id != entry_id and "\n" not in new_id

    assert _truth(world, new_id) == truth
    assert world.entry(new_id).status == 2
    manifest = (json.loads((root / f"karchive/{entry_id}/manifest.json").read_text())
                if root is not None else world.manifest(entry_id))
    assert manifest["recreated_as"] == new_id and "recreating" not in manifest
    journal = "".join(p.read_text() for p in world.journal.rglob("*.jsonl"))
    assert any(json.loads(line)["step"] == "recreated" and json.loads(line)["result"] == "ok"
               for line in journal.splitlines())

    # Idempotent: the mapping answers, no second entry is made.
    count = len(world.backend.all_entries())
    code, out, _ = _recreate(world, entry_id)
    assert code == 0 and out.strip() == new_id
    assert len(world.backend.all_entries()) == count


def test_recreating_an_entry_with_no_archive_is_one_line(make_world):
    world = make_world()
    world.write_policy(world.ids_rule(world.candidates(1), "archived"))
    code, out, err = _recreate(world, "0_zzzzzzzz")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "no archive manifest for 0_zzzzzzzz" in err
