"""`karchive export` against the sandbox: archived entries land in DIR/{entry_id}/ verified
against the manifest (from S3 and from a directory), a file whose stored bytes changed is never
left under its final name, and a Glacier copy is thawed first (exit 2 without --wait)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import pytest
from apply_world import MiB, World, sha_of

from controller.cli import main


def _export(world: World, ids: list[str], target: Path, *extra: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["export", *ids, "--to", str(target), "-f", str(world.policy),
                     "--thaw-poll", "0.5", *extra])
    return code, err.getvalue()


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("backend", ["s3", "directory"])
def test_archived_entries_are_exported_whole_and_verified(make_world, tmp_path, backend):
    world = make_world(max_size=3 * MiB)
    root = tmp_path / "nas" if backend == "directory" else None
    if root is not None:
        root.mkdir()
    ids = world.purgeable(2)
    world.write_policy(world.ids_rule(ids, "archived"), storage_class="STANDARD", directory=root)
    assert world.apply()[0] == 0
    target = tmp_path / "export"
    code, err = _export(world, ids, target)
    assert code == 0, err
    for entry_id in ids:
        exported = _files(target / entry_id)
        original = world.original(entry_id)
        assert exported[f"original/{original.id}.{original.file_ext}"] == \
            world.original_sha(entry_id)
        with world.backend.lock:
            sides = [*world.backend.captions_by_entry[entry_id],
                     *world.backend.attachments_by_entry[entry_id]]
            truth = {a.id: sha_of(a.content, a.size) for a in sides if a.status == 2}
        found = {name.split("/")[1].split(".")[0]: sha for name, sha in exported.items()
                 if name.startswith(("captions/", "attachments/"))}
        assert found == truth
        assert any(name.startswith("thumbs/") for name in exported)
        manifest = json.loads((target / entry_id / "manifest.json").read_text())
        assert manifest["entry_id"] == entry_id
        assert not [name for name in exported if ".part-" in name]
    # Run again: nothing is fetched twice, nothing changes.
    before = _files(target)
    assert _export(world, ids, target)[0] == 0
    assert _files(target) == before


def test_a_stored_file_that_no_longer_matches_is_never_left_as_exported(make_world, tmp_path):
    world = make_world(max_size=3 * MiB)
    entry_id = world.purgeable(1)[0]
    world.write_policy(world.ids_rule([entry_id], "archived"), storage_class="STANDARD")
    assert world.apply()[0] == 0
    caption = world.manifest(entry_id)["captions"][0]
    world.s3.put_object(Bucket=world.sandbox.bucket, Key=caption["key"], Body=b"tampered")
    target = tmp_path / "export"
    code, err = _export(world, [entry_id], target)
    assert code == 1
    assert "sha256" in err or "bytes" in err
    relative = caption["key"].split(f"{entry_id}/", 1)[1]
    assert not (target / entry_id / relative).exists()
    assert not (target / entry_id / "manifest.json").exists()
    assert not [p for p in target.rglob("*") if ".part-" in p.name]


def test_a_glacier_copy_is_thawed_first_and_waited_for_with_wait(make_world, tmp_path):
    world = make_world(max_size=3 * MiB, restore_delay=1.0)
    entry_id = world.candidates(1)[0]
    world.write_policy(world.ids_rule([entry_id], "archived"), storage_class="GLACIER")
    assert world.apply()[0] == 0
    target = tmp_path / "export"
    code, err = _export(world, [entry_id], target)
    assert code == 2, err
    assert "thaw" in err and "requested" in err
    assert not (target / entry_id / "manifest.json").exists()
    code, err = _export(world, [entry_id], target, "--wait")
    assert code == 0, err
    original = world.original(entry_id)
    video = target / entry_id / f"original/{original.id}.{original.file_ext}"
    assert hashlib.sha256(video.read_bytes()).hexdigest() == world.original_sha(entry_id)
