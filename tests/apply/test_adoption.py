"""Copies and placeholders karchive did not prove, over real HTTP (design.md invariants 2, 6).

A copy the Princeton tool left is adopted only when its ETag, recomputed from the original
streamed out of Kaltura with that tool's part size, matches — a single PUT (MD5) or a boto3
multipart upload (``-N``); a copy that does not match is left as it is and the entry archived
again beside it, under either layout. Content is the placeholder only when karchive recorded its
flavor at swap time: a video edited to the placeholder's exact size is archived and kept.
"""

from __future__ import annotations

import hashlib

import pytest
from apply_world import PLACEHOLDER, TAG_ARCHIVED, TAG_REPLACED, MiB, World, upload_new_version
from boto3.s3.transfer import TransferConfig

from controller.compose import compose
from controller.runtime.metrics import CallCounter
from controller.runtime.pipeline import Pipeline
from policies.loader import load_policy
from policies.state import ObservedState, classify


def _bytes_of(world: World, entry_id: str) -> bytes:
    flavor = world.original(entry_id)
    return flavor.content.read(0, flavor.size_in_bytes)


def _princeton_copy(world: World, entry_id: str, data: bytes, tmp_path) -> str:
    """What the old tool did: ``upload_file`` with boto3's defaults, to the bare entry id."""
    path = tmp_path / entry_id
    path.write_bytes(data)
    world.s3.upload_file(str(path), world.sandbox.bucket, entry_id, Config=TransferConfig())
    world.backend.get_entry(entry_id).tags += f", {TAG_ARCHIVED}"
    return str(world.s3.head_object(Bucket=world.sandbox.bucket, Key=entry_id)["ETag"])


def _observed(world: World, entry_id: str):
    policy = load_policy(world.policy)
    counter = CallCounter()
    kept = []
    Pipeline(compose(policy, metrics=counter)).run(
        entry_ids=[entry_id], each=lambda assessment: kept.append(assessment.entry))
    return kept[0], counter


@pytest.mark.parametrize("layout", ["entry-folder", "legacy"])
@pytest.mark.parametrize("size", [1 * MiB, 17 * MiB], ids=["single-part", "multipart"])
def test_a_princeton_copy_whose_etag_matches_is_adopted_without_an_upload(
        make_world, tmp_path, layout: str, size: int) -> None:
    world = make_world()
    entry_id = world.candidates(1, min_size=size)[0]
    etag = _princeton_copy(world, entry_id, _bytes_of(world, entry_id), tmp_path)
    assert ("-" in etag) is (world.original(entry_id).size_in_bytes >= 8 * MiB)
    world.write_policy(world.ids_rule([entry_id], "archived"))
    world.policy.write_text(world.policy.read_text().replace(
        "  prefix: karchive/\n", f"  prefix: karchive/\n  layout: {layout}\n"))
    # Before: a copy nobody proved, whatever its size; plan verifies it (an archive item).
    entry, _ = _observed(world, entry_id)
    assert classify(entry).reason == "archive copy not verified against the original"
    world.converge()
    flavor = world.original(entry_id)
    keys = world.object_keys(f"karchive/{entry_id}/")
    assert f"karchive/{entry_id}/verified/{flavor.id}.{etag.strip(chr(34))}" in keys
    assert not [k for k in keys if "/original/" in k]  # nothing uploaded again
    assert world.manifest(entry_id)["sha256"] == world.original_sha(entry_id)
    # After: the listing alone proves it (no GET, no HEAD per entry).
    entry, counter = _observed(world, entry_id)
    assert classify(entry).state is ObservedState.ARCHIVED
    assert set(counter.s3) == {("ListObjectsV2", "ok")}


@pytest.mark.parametrize("layout", ["entry-folder", "legacy"])
def test_a_princeton_copy_of_other_bytes_is_left_alone_and_the_entry_archived_beside_it(
        make_world, tmp_path, layout: str) -> None:
    world = make_world()
    entry_id = world.candidates(1, min_size=1 * MiB)[0]
    real = _bytes_of(world, entry_id)
    other = hashlib.sha256(b"another video").digest() * (len(real) // 32) + b"x" * (len(real) % 32)
    etag = _princeton_copy(world, entry_id, other, tmp_path)  # same size, other content
    world.write_policy(world.ids_rule([entry_id], "placeholder"), storage_class="STANDARD")
    world.policy.write_text(world.policy.read_text().replace(
        "  prefix: karchive/\n", f"  prefix: karchive/\n  layout: {layout}\n"))
    plan = world.plan()[1]
    assert f"~ replace {entry_id} (rule: chosen, verify the old copy or archive" in plan
    world.converge()
    head = world.s3.head_object(Bucket=world.sandbox.bucket, Key=entry_id)
    assert head["ETag"] == etag  # the old object untouched
    flavor_key = world.manifest(entry_id)["original"]["key"]
    assert flavor_key.startswith(f"karchive/{entry_id}/original/")  # karchive's own layout
    body = world.s3.get_object(Bucket=world.sandbox.bucket, Key=flavor_key)["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(real).digest()
    assert {TAG_ARCHIVED, TAG_REPLACED} <= world.tags(entry_id)
    assert not [k for k in world.object_keys(f"karchive/{entry_id}/") if "/verified/" in k]


def test_a_video_edited_to_the_placeholders_exact_size_is_archived_and_kept(
        make_world, kaltura_client_for) -> None:
    world = make_world()
    entry_id = world.candidates(1, min_size=1 * MiB)[0]
    world.write_policy(world.ids_rule([entry_id], "archived"))
    world.converge()
    assert world.tags(entry_id) == world.tags(entry_id) | {TAG_ARCHIVED}
    # The owner uploads a new video of exactly the placeholder's byte size (other bytes).
    new = hashlib.sha256(b"a new lecture").digest() * (len(PLACEHOLDER) // 32)
    assert len(new) == len(PLACEHOLDER) and new != PLACEHOLDER
    upload_new_version(world, kaltura_client_for(world.sandbox), entry_id, new)
    plan = world.plan()[1]
    assert f"+ archive {entry_id}" in plan
    assert "← restore" not in plan and "# repair" not in plan and "* thaw" not in plan
    world.converge()
    # Archived again and kept: never tagged flavors_deleted, never restored over.
    assert TAG_REPLACED not in world.tags(entry_id)
    assert world.original_sha(entry_id) == hashlib.sha256(new).hexdigest()
    document = world.manifest(entry_id)
    assert document["sha256"] == hashlib.sha256(new).hexdigest()
    assert document["original"]["flavor_id"] == world.original(entry_id).id
    assert not [k for k in world.object_keys(f"karchive/{entry_id}/") if "/placeholder/" in k]


def test_the_placeholder_flavor_is_recorded_at_swap_time_and_seen_in_the_listing(
        make_world) -> None:
    world = make_world()
    entry_id = world.candidates(1, min_size=1 * MiB)[0]
    world.write_policy(world.ids_rule([entry_id], "placeholder"))
    world.converge()
    flavor = world.original(entry_id)
    assert flavor.size_in_bytes == len(PLACEHOLDER)
    assert f"karchive/{entry_id}/placeholder/{flavor.id}" in world.object_keys()
    assert world.manifest(entry_id)["placeholder"]["flavor_id"] == flavor.id
    steps = [line for line in world.journal.rglob("*.jsonl")
             for line in line.read_text().splitlines() if "mark_placeholder" in line]
    assert any(flavor.id in step for step in steps)
    entry, counter = _observed(world, entry_id)
    assert classify(entry).state is ObservedState.PLACEHOLDER
    assert set(counter.s3) == {("ListObjectsV2", "ok")}
