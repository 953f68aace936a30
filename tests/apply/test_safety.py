"""The ways the tools we replace lose data, tried against `karchive apply` (design.md inv. 1-4):
an edit after archival with the same size, truncated downloads, a flavor whose bytes do not
match its announced size, ACTION_BLOCKED, stale saved plans and a plan that looks wrong."""

from __future__ import annotations

import hashlib
import json

import pytest
from apply_world import (
    PLACEHOLDER,
    TAG_ARCHIVED,
    TAG_REPLACED,
    MiB,
    World,
    upload_new_version,
)

from controller.compose import compose
from controller.runtime.journal import Journal
from policies.errors import IntegrityError
from policies.loader import load_policy
from reconcilers.replace import Replace


def _edit_same_size(world: World, client, entry_id: str) -> bytes:
    """A person uploads a new version of the video with exactly the old size."""
    size = world.original(entry_id).size_in_bytes
    data = hashlib.sha256(b"edited").digest() * (size // 32) + b"e" * (size % 32)
    upload_new_version(world, client, entry_id, data)
    return data


def _context(world: World):
    policy = load_policy(world.policy)
    return compose(policy).context(Journal())


def test_a_video_edited_after_archival_with_the_same_size_is_archived_again_never_lost(
    make_world, kaltura_client_for
):
    world = make_world()
    entry_id = world.candidates(1, min_size=1 * MiB)[0]
    old = world.original(entry_id)
    world.write_policy(world.ids_rule([entry_id], "archived"))
    assert world.apply()[0] == 0

    edited = _edit_same_size(world, kaltura_client_for(world.sandbox), entry_id)
    new = world.original(entry_id)
    assert new.size_in_bytes == old.size_in_bytes and new.id != old.id
    # The copy is of the old version: replace refuses, whatever the tags say.
    world.write_policy(world.ids_rule([entry_id], "placeholder"))
    with pytest.raises(IntegrityError, match="not the current original"):
        Replace().run(entry_id, _context(world))
    assert world.original(entry_id).id == new.id

    # apply archives the edited version first, then replaces.
    for _ in range(4):
        code, out = world.apply()
        assert code == 0, out
    assert {TAG_ARCHIVED, TAG_REPLACED} <= world.tags(entry_id)
    keys = world.object_keys(f"karchive/{entry_id}/original/")
    assert f"karchive/{entry_id}/original/{new.id}.{new.file_ext}" in keys
    assert world.manifest(entry_id)["sha256"] == hashlib.sha256(edited).hexdigest()
    assert world.manifest(entry_id)["original"]["flavor_id"] == new.id


def test_a_download_cut_mid_stream_is_resumed_and_the_copy_is_exact(make_world):
    world = make_world()
    entry_id = world.candidates(1, min_size=6 * MiB)[0]
    world.admin("/admin/faults", {"service": "download", "action": "flavor", "kind": "cut",
                                  "count": 3, "after_bytes": 1 * MiB})
    world.write_policy(world.ids_rule([entry_id], "archived"), storage_class="STANDARD")
    code, out = world.apply()
    assert code == 0, out
    original = world.original(entry_id)
    key = f"karchive/{entry_id}/original/{original.id}.{original.file_ext}"
    body = world.s3.get_object(Bucket=world.sandbox.bucket, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == world.original_sha(entry_id)


def test_a_download_that_keeps_being_cut_never_leads_to_a_copy_or_a_replace(make_world):
    world = make_world()
    entry_id = world.candidates(1, min_size=6 * MiB)[0]
    before = world.original(entry_id).id
    world.admin("/admin/faults", {"service": "download", "action": "flavor", "kind": "cut",
                                  "count": 1000, "after_bytes": 0})
    world.write_policy(world.ids_rule([entry_id], "placeholder"))
    code, out = world.apply()
    assert code == 1, out
    assert "failed" in out
    assert world.original(entry_id).id == before
    assert not world.tags(entry_id) & {TAG_ARCHIVED, TAG_REPLACED}
    assert not [k for k in world.object_keys(f"karchive/{entry_id}/") if "/original/" in k]
    assert world.uploads() == []


def test_bytes_that_differ_from_the_announced_size_never_lead_to_a_replace(make_world):
    world = make_world()
    entry_id = world.candidates(1, min_size=1 * MiB)[0]
    flavor = world.original(entry_id)
    with world.backend.lock:  # Kaltura's record announces more bytes than the file holds
        flavor.size_in_bytes += 4096
        flavor.size = -(-flavor.size_in_bytes // 1024)
    world.write_policy(world.ids_rule([entry_id], "placeholder"))
    code, out = world.apply()
    assert code == 1, out
    assert "announces" in out
    assert world.original(entry_id).id == flavor.id
    assert not world.tags(entry_id) & {TAG_ARCHIVED, TAG_REPLACED}
    assert world.uploads() == []


def test_action_blocked_is_paced_not_retried_in_a_tight_loop(make_world):
    world = make_world()
    ids = world.candidates(4)
    world.admin("/admin/throttle", {"media.update": [2, 10]})
    world.write_policy(world.ids_rule(ids, "archived"), storage_class="STANDARD")
    calls_before = world.admin("/admin/stats", method="GET")["calls"].get("media.update", 0)
    code, out = world.apply()
    assert code == 0, out
    assert all(TAG_ARCHIVED in world.tags(i) for i in ids)
    calls = world.admin("/admin/stats", method="GET")["calls"].get("media.update", 0)
    # 4 tag updates are needed. Each refusal halves the class's rate (from the 35/10 s it
    # learns on the first one), so a handful are refused, never the hundreds of a tight loop.
    assert 4 <= calls - calls_before <= 4 + 8


def test_a_stale_saved_plan_is_refused_and_the_fresh_items_still_run(make_world):
    world = make_world()
    ids = world.candidates(2)
    world.write_policy(world.ids_rule(ids, "archived"), storage_class="STANDARD")
    plan_file = world.tmp / "plan.json"
    code, _ = world.plan("--out", str(plan_file))
    assert code == 0
    assert {i["entry_id"] for i in json.loads(plan_file.read_text())["items"]} >= set(ids)
    with world.backend.lock:  # someone edits the first entry after the plan was saved
        entry = world.entry(ids[0])
        entry.name += " (edited)"
        entry.updated_at += 10
    code, out = world.apply(str(plan_file))
    assert code == 1, out
    assert f"stale archive {ids[0]}" in out
    assert TAG_ARCHIVED not in world.tags(ids[0])
    assert TAG_ARCHIVED in world.tags(ids[1])


def test_a_plan_replacing_too_large_a_share_is_refused_with_one_line(make_world):
    world = make_world()
    ids = world.candidates(5)
    world.write_policy(world.ids_rule(ids, "placeholder"), share=0.01)
    code, out = world.apply()
    assert code == 1
    assert "max_replace_share" in out
    assert all(not world.tags(i) & {TAG_ARCHIVED, TAG_REPLACED} for i in ids)
    assert world.object_keys() == []


def test_apply_again_after_success_plans_nothing(make_world):
    world = make_world()
    ids = world.candidates(3)
    world.write_policy(world.ids_rule(ids, "placeholder"))
    for _ in range(3):
        assert world.apply()[0] == 0
    assert "No changes." in world.plan()[1]
    assert all(world.original(i).size_in_bytes == len(PLACEHOLDER) for i in ids)
    assert len([k for k in world.object_keys() if "/original/" in k]) == 3
