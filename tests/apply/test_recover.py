"""↺ recover: an entry left with no content is brought back from its copy, over real HTTP.

The Princeton tool's emptied entries (NO_CONTENT, the copy in GLACIER or STANDARD) and a READY
entry whose original flavor is dead, with karchive's own copy. Each is thawed when it must be,
given its content back (``media.addContent`` or ``media.updateContent``), and checked against
the copy before anything is recorded; the copy is never moved or deleted.
"""

from __future__ import annotations

import hashlib
import json
import time

from apply_world import TAG_ARCHIVED, TAG_REPLACED, World

from sandbox.catalogue import LegacyKind


def _journal_steps(world: World, entry_id: str, action: str) -> list[tuple[str, str]]:
    return [(r["step"], r["result"]) for path in sorted(world.journal.rglob("*.jsonl"))
            for r in map(json.loads, path.read_text().splitlines())
            if r["entry_id"] == entry_id and r["action"] == action]


def test_entries_the_old_tool_emptied_are_thawed_recovered_and_verified(make_world) -> None:
    world = make_world(entries=400, seed=5, restore_delay=1.0)
    summary = world.sandbox.summary
    emptied = [*summary.legacy_ids(LegacyKind.EMPTIED_BY_REPLACE),
               *summary.legacy_ids(LegacyKind.EMPTIED_BY_RESTORE)]
    assert emptied and all(world.entry(i).status == 7 for i in emptied)
    objects = {o.key: o for o in summary.objects}
    world.write_policy(world.ids_rule(emptied, "archived"))
    plan = world.plan()[1]
    for entry_id in emptied:
        cold = objects[entry_id].storage_class == "GLACIER"
        assert (f"* thaw {entry_id}" if cold else f"↺ recover {entry_id}") in plan, plan
    for _ in range(3):
        code, out = world.apply()
        assert code == 0 and ": failed" not in out, out
        time.sleep(1.5)
        if "No changes." in world.plan()[1]:
            break
    assert "No changes." in world.plan()[1]
    for entry_id in emptied:
        content = objects[entry_id].content
        copy_sha = hashlib.sha256(content.read(0, content.size)).hexdigest()
        assert world.entry(entry_id).status == 2
        assert world.original_sha(entry_id) == copy_sha  # exactly the copy's bytes
        tags = world.tags(entry_id)
        assert TAG_ARCHIVED in tags and TAG_REPLACED not in tags
        # Checked against the copy's ETag, then recorded as the current copy (adopted).
        flavor = world.original(entry_id)
        head = world.s3.head_object(Bucket=world.sandbox.bucket, Key=entry_id)
        marker = f"karchive/{entry_id}/verified/{flavor.id}.{head['ETag'].strip(chr(34))}"
        assert marker in world.object_keys(f"karchive/{entry_id}/")
        steps = [s for s in _journal_steps(world, entry_id, "recover") if s[1] != "intent"]
        assert steps == [("add_content", "ok"), ("verify", "ok"), ("retag", "ok")], steps


def test_a_ready_entry_whose_original_died_is_recovered_from_karchives_copy(make_world) -> None:
    world = make_world()
    entry_id = world.candidates(1)[0]
    real = world.original_sha(entry_id)
    world.write_policy(world.ids_rule([entry_id], "archived"), storage_class="STANDARD")
    world.converge()
    with world.backend.lock:
        world.original(entry_id).status = -1  # the original flavor is in ERROR for good
    assert f"↺ recover {entry_id}" in world.plan()[1]
    world.converge()
    assert world.original(entry_id).status == 2 and world.original_sha(entry_id) == real
    steps = [s for s in _journal_steps(world, entry_id, "recover") if s[1] != "intent"]
    assert ("add_content", "ok") in steps and ("verify", "ok") in steps
    # The copy is current again under the new flavor id: nothing left to do.
    assert world.manifest(entry_id)["original"]["flavor_id"] == world.original(entry_id).id
