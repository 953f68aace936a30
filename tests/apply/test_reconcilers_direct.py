"""Reconcilers run directly against the sandbox: concurrent runners, approval mode, restore by
chunked upload, thaw answers, and repair of an interrupted replace."""

from __future__ import annotations

import hashlib
import threading
import time

from apply_world import PLACEHOLDER, TAG_ARCHIVED, TAG_REPLACED, MiB, World

from controller.compose import compose
from controller.runtime.journal import Journal
from policies.loader import load_policy
from reconcilers.archive import Archive
from reconcilers.base import Context, Result
from reconcilers.repair import Repair
from reconcilers.replace import Replace
from reconcilers.restore import Restore
from reconcilers.thaw import Thaw


def _context(world: World, **kw) -> Context:
    policy = load_policy(world.policy)
    return compose(policy).context(Journal(), **kw)


def _until_done(reconciler, entry_id: str, ctx: Context, world: World, limit: float = 30.0):
    deadline = time.monotonic() + limit
    while True:
        outcome = reconciler.run(entry_id, ctx)
        if outcome.result is not Result.WAITING:
            return outcome
        assert time.monotonic() < deadline, outcome.message
        world.backend.tick()
        time.sleep(0.2)


def test_two_runners_archiving_one_entry_write_one_copy(make_world):
    world = make_world()
    entry_id = world.candidates(1, min_size=11 * MiB)[0]
    world.write_policy(world.ids_rule([entry_id], "archived"), storage_class="STANDARD")
    results, errors = [], []
    # Two runs that started together: each sweeps only uploads from before its start (a killed
    # run's leftovers), so neither aborts the other's upload in flight. (Contexts made inside
    # the threads would start apart, and the later run would sweep the earlier one's upload.)
    contexts = [_context(world) for _ in range(2)]

    def runner(ctx: Context) -> None:
        try:
            results.append(Archive().run(entry_id, ctx))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(ctx,)) for ctx in contexts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 2
    keys = world.object_keys(f"karchive/{entry_id}/original/")
    assert len(keys) == 1
    body = world.s3.get_object(Bucket=world.sandbox.bucket, Key=keys[0])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == world.original_sha(entry_id)
    assert world.uploads() == []


def test_replace_approves_its_own_replacement_when_the_partner_requires_approval(make_world):
    world = make_world(approval=True)
    entry_id = world.candidates(1)[0]
    world.write_policy(world.ids_rule([entry_id], "placeholder"), storage_class="STANDARD")
    ctx = _context(world)
    Archive().run(entry_id, ctx)
    outcome = _until_done(Replace(), entry_id, ctx, world)
    assert outcome.result is Result.DONE
    assert world.original(entry_id).size_in_bytes == len(PLACEHOLDER)
    assert {TAG_ARCHIVED, TAG_REPLACED} <= world.tags(entry_id)


def test_restore_by_chunked_upload_brings_back_the_exact_bytes(make_world):
    world = make_world()
    entry_id = world.candidates(1, min_size=9 * MiB)[0]
    real = world.original_sha(entry_id)
    world.write_policy(world.ids_rule([entry_id], "placeholder"), storage_class="STANDARD_IA")
    ctx = _context(world, restore_via="upload")
    Archive().run(entry_id, ctx)
    _until_done(Replace(), entry_id, ctx, world)
    assert world.original_sha(entry_id) == hashlib.sha256(PLACEHOLDER).hexdigest()
    outcome = _until_done(Restore(), entry_id, ctx, world)
    assert outcome.result is Result.DONE
    assert world.original_sha(entry_id) == real
    assert world.tags(entry_id) & {TAG_ARCHIVED, TAG_REPLACED} == {TAG_ARCHIVED}


def test_thaw_asked_twice_is_success_both_times(make_world):
    world = make_world(restore_delay=30.0)
    entry_id = world.candidates(1)[0]
    world.write_policy(world.ids_rule([entry_id], "archived"))
    ctx = _context(world)
    Archive().run(entry_id, ctx)
    assert Thaw().run(entry_id, ctx).result is Result.DONE
    second = Thaw().run(entry_id, ctx)
    assert second.result in (Result.DONE, Result.SKIPPED)


def test_repair_finishes_a_replace_interrupted_before_its_last_tag(make_world):
    world = make_world()
    entry_id = world.candidates(1)[0]
    world.write_policy(world.ids_rule([entry_id], "placeholder"), storage_class="STANDARD")
    ctx = _context(world)
    Archive().run(entry_id, ctx)
    assert Replace().run(entry_id, ctx).result is Result.WAITING  # killed right after this
    deadline = time.monotonic() + 30
    while world.entry(entry_id).replacing_entry_id:
        world.backend.tick()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert TAG_REPLACED not in world.tags(entry_id)
    # Nothing recorded the swap, and the size alone proves nothing: the plan offers the
    # replace again (archive first), and the archive step finds the placeholder's own bytes.
    assert f"~ replace {entry_id}" in world.plan()[1]
    assert Archive().run(entry_id, ctx).message.endswith("recorded as such, not archived")
    assert f"# repair {entry_id}: tag flavors_deleted" in world.plan()[1]
    assert Repair().run(entry_id, ctx).result is Result.DONE
    assert {TAG_ARCHIVED, TAG_REPLACED} <= world.tags(entry_id)
    assert "No changes." in world.plan()[1]


def test_an_entry_archived_by_the_old_tool_is_adopted_by_its_etag_before_a_replace(make_world):
    from sandbox.catalogue.truth import LegacyKind

    world = make_world(entries=200, seed=3)
    legacy = [i for i in world.sandbox.summary.legacy_ids(LegacyKind.ARCHIVED)
              if world.original(i) is not None and world.entry(i).status == 2]
    assert legacy, "the seeded catalogue has no Princeton-archived entry"
    entry_id = legacy[0]
    head = world.s3.head_object(Bucket=world.sandbox.bucket, Key=entry_id)
    real = world.original_sha(entry_id)
    world.write_policy(world.ids_rule([entry_id], "placeholder"))
    outcome = _until_done(Replace(), entry_id, _context(world), world)
    assert outcome.result is Result.DONE
    # Its ETag, recomputed from the original streamed out of Kaltura, proved the copy: it is
    # recorded (checksum of that download, the flavor it matched), not uploaded again.
    document = world.manifest(entry_id)
    flavor_id = document["original"]["flavor_id"]
    assert (document["sha256"], document["original"]["key"]) == (real, entry_id)
    assert document["original"]["etag"] == head["ETag"].strip('"')
    keys = world.object_keys(f"karchive/{entry_id}/")
    assert f"karchive/{entry_id}/verified/{flavor_id}.{head['ETag'].strip(chr(34))}" in keys
    assert not [k for k in keys if "/original/" in k]
    # The swap was recorded as the placeholder's flavor, and the old tool's object kept as is.
    placeholder_flavor = world.original(entry_id)
    assert placeholder_flavor.size_in_bytes == len(PLACEHOLDER)
    assert f"karchive/{entry_id}/placeholder/{placeholder_flavor.id}" in keys
    again = world.s3.head_object(Bucket=world.sandbox.bucket, Key=entry_id)
    assert (again["ETag"], again["ContentLength"]) == (head["ETag"], head["ContentLength"])
