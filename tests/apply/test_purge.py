"""Purge (a rule's state: deleted) through `karchive apply`, against the sandbox: everything is
archived and verified before baseEntry.delete, in S3 and in a directory; a cut caption download
leaves the entry in Kaltura; deletes are paced under ACTION_BLOCKED; the confirmation is typed;
a run killed between the delete and its journal line converges; allow_delete is required."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import pytest
from apply_world import MiB, World, sha_of

from controller.cli import main
from controller.compose import compose
from controller.runtime.journal import Journal
from policies.errors import PermanentError
from policies.loader import load_policy
from reconcilers.base import Result
from reconcilers.purge import Purge

DELETED = 3


def _rule(ids: list[str]) -> str:
    listed = ", ".join(ids)
    return (f"  - name: purge-unwatched\n    match: {{never_played: true, entry_ids: [{listed}]}}"
            "\n    state: deleted\n")


def _stored(world: World, root: Path | None, key: str) -> bytes:
    if root is not None:
        return (root / key).read_bytes()
    return world.s3.get_object(Bucket=world.sandbox.bucket, Key=key)["Body"].read()


def _cli(world: World, answer: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    out = io.StringIO()

    def typed(prompt: str) -> str:
        out.write(prompt)
        return answer

    monkeypatch.setattr("builtins.input", typed)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["apply", "-f", str(world.policy), "-q", "--journal", str(world.journal)])
    return code, out.getvalue()


@pytest.mark.parametrize("backend", ["s3", "directory"])
def test_a_never_played_entry_is_archived_completely_verified_then_deleted(
    make_world, tmp_path, backend, monkeypatch
):
    world = make_world(max_size=4 * MiB)
    root = tmp_path / "nas" if backend == "directory" else None
    if root is not None:
        root.mkdir()
    entry_id = world.purgeable(1)[0]
    entry = world.entry(entry_id)
    name, categories, original = entry.name, entry.categories, world.original(entry_id)
    with world.backend.lock:
        captions = [c for c in world.backend.captions_by_entry[entry_id] if c.status == 2]
        attachments = [a for a in world.backend.attachments_by_entry[entry_id] if a.status == 2]
        side = {a.id: sha_of(a.content, a.size) for a in (*captions, *attachments)}
    world.write_policy(_rule([entry_id]), storage_class="STANDARD", directory=root,
                       extra="allow_delete: true")

    # Only the typed word or number goes on: "yes" is not enough for a deletion.
    code, out = _cli(world, "yes", monkeypatch)
    assert code == 1 and "Apply cancelled." in out
    assert "entries will be DELETED from Kaltura" in out and "type 'delete'" in out
    assert world.entry(entry_id).status != DELETED
    code, out = _cli(world, "1", monkeypatch)
    assert code == 0, out

    assert world.entry(entry_id).status == DELETED
    document = json.loads(_stored(world, root, f"karchive/{entry_id}/manifest.json"))
    assert document["name"] == name and document["categories"] == categories
    assert document["purge"]["files"] == 1 + len(side) + len(document["thumbnails"])
    assert document["deleted_at"]
    copy = _stored(world, root, document["original"]["key"])
    assert len(copy) == original.size_in_bytes
    assert hashlib.sha256(copy).hexdigest() == document["sha256"] == sha_of(
        original.content, original.size_in_bytes)
    recorded = {a["id"]: a for a in document["captions"] + document["attachments"]}
    assert set(recorded) == set(side)
    for asset_id, truth in side.items():
        assert recorded[asset_id]["sha256"] == truth
        assert hashlib.sha256(_stored(world, root, recorded[asset_id]["key"])).hexdigest() == truth
    assert document["thumbnails"] and all(t["sha256"] for t in document["thumbnails"])
    # Gone from Kaltura, kept in the archive: nothing more to do, nothing reported.
    code, out = world.plan()
    assert "No changes." in out and entry_id not in out


def test_a_caption_download_cut_off_midway_leaves_the_entry_in_kaltura(make_world):
    world = make_world(max_size=4 * MiB)
    entry_id = world.purgeable(1)[0]
    world.admin("/admin/faults", {"service": "download", "action": "caption", "kind": "cut",
                                  "count": 1000, "after_bytes": 10})
    world.write_policy(_rule([entry_id]), storage_class="STANDARD", extra="allow_delete: true")
    code, out = world.apply()
    assert code == 1, out
    assert "failed" in out
    assert world.entry(entry_id).status == 2
    stats = world.admin("/admin/stats", method="GET")["calls"]
    assert stats.get("baseentry.delete", 0) == 0


def test_deletes_are_paced_under_action_blocked_not_retried_in_a_tight_loop(make_world):
    world = make_world(max_size=1 * MiB, entries=80)
    ids = world.purgeable(5)
    world.admin("/admin/throttle", {"baseentry.delete": [2, 2]})
    world.write_policy(_rule(ids), storage_class="STANDARD", extra="allow_delete: true")
    code, out = world.apply()
    assert code == 0, out
    assert all(world.entry(i).status == DELETED for i in ids)
    calls = world.admin("/admin/stats", method="GET")["calls"].get("baseentry.delete", 0)
    # 5 deletes are needed. The first refusal halves the class's pace, so a few are refused,
    # never the hundreds of a loop that re-queues ACTION_BLOCKED without delay.
    assert 5 < calls <= 5 + 6  # at least one refusal: the throttle was really met


def test_a_run_killed_between_the_delete_and_its_journal_line_converges(make_world):
    world = make_world(max_size=4 * MiB)
    done, stranger = world.purgeable(2)
    world.write_policy(_rule([done]), storage_class="STANDARD", extra="allow_delete: true")
    policy = load_policy(world.policy)
    ctx = compose(policy).context(Journal())
    assert Purge().run(done, ctx).result is Result.DONE
    # As if killed right after baseEntry.delete: no deleted_at in the manifest.
    key = f"karchive/{done}/manifest.json"
    document = json.loads(_stored(world, None, key))
    del document["deleted_at"]
    world.s3.put_object(Bucket=world.sandbox.bucket, Key=key, Body=json.dumps(document).encode())
    again = Purge().run(done, ctx)
    assert again.result is Result.SKIPPED
    assert json.loads(_stored(world, None, key))["deleted_at"]
    # Deleted by someone else before any verified archive: an error, never "done".
    world.backend.delete_media(stranger)
    with pytest.raises(PermanentError, match="never verified"):
        Purge().run(stranger, ctx)


def test_a_deleting_rule_without_allow_delete_is_refused_in_one_line(make_world):
    world = make_world()
    world.write_policy(_rule(world.candidates(1)))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["apply", "-f", str(world.policy), "--auto-approve", "-q"])
    assert code == 1
    assert err.getvalue().count("\n") == 1
    assert "allow_delete: true" in err.getvalue()
