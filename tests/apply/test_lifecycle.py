"""The whole life of an entry through `karchive apply`, checked in Kaltura and S3 at each step:
original -> archived -> placeholder -> played -> thaw (moto's restore delay) -> restore ->
archived; and idempotence (apply again after success plans nothing)."""

from __future__ import annotations

import hashlib
import time

from apply_world import PLACEHOLDER, TAG_ARCHIVED, TAG_REPLACED, MiB


def test_an_entry_goes_original_archived_placeholder_played_thawed_restored(make_world):
    world = make_world(restore_delay=1.0)
    entry_id = world.candidates(1, min_size=12 * MiB)[0]
    original = world.original(entry_id)
    real_sha = world.original_sha(entry_id)
    real_thumb = world.default_thumb_sha(entry_id)

    # 1. archived: a verified copy, tagged, content untouched.
    world.write_policy(world.ids_rule([entry_id], "archived"))
    code, out = world.apply()
    assert code == 0, out
    key = f"karchive/{entry_id}/original/{original.id}.{original.file_ext}"
    head = world.s3.head_object(Bucket=world.sandbox.bucket, Key=key)
    assert head["ContentLength"] == original.size_in_bytes
    assert head["StorageClass"] == "GLACIER"
    assert head["Metadata"]["flavor-id"] == original.id
    assert head["Metadata"]["entry-id"] == entry_id
    assert head["Metadata"]["size-bytes"] == str(original.size_in_bytes)
    manifest = world.manifest(entry_id)
    assert manifest["sha256"] == real_sha
    assert manifest["original"]["flavor_id"] == original.id
    assert manifest["name"] == world.entry(entry_id).name
    assert TAG_ARCHIVED in world.tags(entry_id)
    assert TAG_REPLACED not in world.tags(entry_id)
    assert world.original(entry_id).id == original.id
    assert world.uploads() == []

    # 2. placeholder: Kaltura holds the placeholder, the real thumbnail is still the default.
    # The rule holds while the entry goes unplayed: a play takes it out (and restore_on_play in).
    world.write_policy(world.ids_rule([entry_id], "placeholder").replace(
        "match: {", "match: {unplayed_for: 1d, "))
    world.converge()
    now_original = world.original(entry_id)
    assert now_original.size_in_bytes == len(PLACEHOLDER)
    assert world.original_sha(entry_id) == hashlib.sha256(PLACEHOLDER).hexdigest()
    assert {TAG_ARCHIVED, TAG_REPLACED} <= world.tags(entry_id)
    if real_thumb is not None:
        assert world.default_thumb_sha(entry_id) == real_thumb

    # 3. played: restore_on_play wants it back; the frozen copy is thawed first.
    # A play in a later second than the swap (Kaltura's times are whole seconds).
    world.admin("/admin/clock", {"advance": 5})
    world.admin("/admin/play", {"entryId": entry_id})
    code, out = world.apply()
    assert code == 0, out
    assert "thaw" in out
    head = world.s3.head_object(Bucket=world.sandbox.bucket, Key=key)
    assert "Restore" in head

    # 4. restored once the thaw is done: the real bytes are back, the copy stays.
    deadline = time.monotonic() + 60
    while 'ongoing-request="true"' in world.s3.head_object(
            Bucket=world.sandbox.bucket, Key=key).get("Restore", ""):
        assert time.monotonic() < deadline, "moto never finished the thaw"
        time.sleep(0.3)
    body = world.s3.get_object(Bucket=world.sandbox.bucket, Key=key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == real_sha
    outputs = world.converge()
    assert world.original(entry_id).size_in_bytes == original.size_in_bytes, outputs
    assert world.original_sha(entry_id) == real_sha
    assert world.tags(entry_id) & {TAG_ARCHIVED, TAG_REPLACED} == {TAG_ARCHIVED}
    if real_thumb is not None:
        assert world.default_thumb_sha(entry_id) == real_thumb

    # 5. idempotent: nothing more to do, and exactly one original copy.
    assert "No changes." in world.plan()[1]
    # One copy, re-keyed to the restored original's new flavor id, same bytes.
    restored = world.original(entry_id)
    new_key = f"karchive/{entry_id}/original/{restored.id}.{restored.file_ext}"
    assert world.object_keys(f"karchive/{entry_id}/original/") == [new_key]
    assert world.manifest(entry_id)["sha256"] == real_sha
    assert world.uploads() == []
