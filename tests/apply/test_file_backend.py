"""The directory backend (storage.url: file://…) through `karchive apply`, as S3 is tested:
the lifecycle original -> archived -> placeholder -> played -> restored (by upload, no thaw),
a download of the wrong size never leaves a copy, write-once refuses other bytes, atomic
writes leave no part behind, the journal is shipped under log/, and the lease is a lock file."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from apply_world import PLACEHOLDER, TAG_ARCHIVED, TAG_REPLACED, MiB

from controller.adapters.storage.lease import FileLease
from controller.adapters.storage.local import META_DIR, TMP_MARK, FileArchive, directory_inventory
from policies.errors import Conflict, IntegrityError


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and META_DIR not in p.parts)


def test_an_entry_goes_archived_placeholder_played_restored_in_a_directory(make_world, tmp_path):
    world = make_world()
    root = tmp_path / "nas"
    root.mkdir()
    entry_id = world.candidates(1, min_size=6 * MiB)[0]
    original = world.original(entry_id)
    real_sha = world.original_sha(entry_id)
    real_thumb = world.default_thumb_sha(entry_id)

    world.write_policy(world.ids_rule([entry_id], "archived"), directory=root)
    code, out = world.apply()
    assert code == 0, out
    copy = root / f"karchive/{entry_id}/original/{original.id}.{original.file_ext}"
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == real_sha
    manifest = json.loads((root / f"karchive/{entry_id}/manifest.json").read_text())
    assert manifest["sha256"] == real_sha
    assert manifest["name"] == world.entry(entry_id).name
    assert TAG_ARCHIVED in world.tags(entry_id)
    assert not [f for f in _files(root) if TMP_MARK in f]
    assert any(f.startswith("karchive/log/") for f in _files(root))  # the journal, shipped

    world.write_policy(world.ids_rule([entry_id], "placeholder").replace(
        "match: {", "match: {unplayed_for: 1d, "), directory=root)
    world.converge()
    assert world.original_sha(entry_id) == hashlib.sha256(PLACEHOLDER).hexdigest()
    assert {TAG_ARCHIVED, TAG_REPLACED} <= world.tags(entry_id)

    # Played: no thaw step, the restore goes by upload straight away.
    world.admin("/admin/clock", {"advance": 5})
    world.admin("/admin/play", {"entryId": entry_id})
    code, out = world.plan()
    assert "thaw" not in out and "restore" in out, out
    world.converge()
    assert world.original_sha(entry_id) == real_sha
    assert world.tags(entry_id) & {TAG_ARCHIVED, TAG_REPLACED} == {TAG_ARCHIVED}
    if real_thumb is not None:
        assert world.default_thumb_sha(entry_id) == real_thumb
    assert "No changes." in world.plan()[1]
    originals = [f for f in _files(root) if f.startswith(f"karchive/{entry_id}/original/")]
    assert len(originals) == 1


def test_bytes_that_differ_from_the_announced_size_leave_no_file_in_the_directory(
    make_world, tmp_path
):
    world = make_world()
    root = tmp_path / "nas"
    root.mkdir()
    entry_id = world.candidates(1, min_size=6 * MiB)[0]
    flavor = world.original(entry_id)
    with world.backend.lock:  # Kaltura's record announces more bytes than the file holds
        flavor.size_in_bytes += 4096
    world.write_policy(world.ids_rule([entry_id], "placeholder"), directory=root)
    code, out = world.apply()
    assert code == 1, out
    assert not world.tags(entry_id) & {TAG_ARCHIVED, TAG_REPLACED}
    assert not [f for f in _files(root) if "/original/" in f or TMP_MARK in f]


def test_a_missing_directory_is_one_line_naming_storage_url(make_world, tmp_path):
    world = make_world()
    world.write_policy(world.ids_rule(world.candidates(1), "archived"),
                       directory=tmp_path / "not-mounted")
    code, out = world.apply()
    assert code == 1
    assert "storage.url" in out and "Traceback" not in out


def test_write_once_accepts_the_same_bytes_and_refuses_others(tmp_path):
    files = FileArchive(tmp_path)
    data = b"x" * 1000
    first = files.upload_stream("p/0_abcdefgh/original/1_aaaaaaaa.mp4", io.BytesIO(data), 1000,
                                metadata={"flavor-id": "1_aaaaaaaa"}, storage_class="LOCAL")
    again = files.upload_stream("p/0_abcdefgh/original/1_aaaaaaaa.mp4", io.BytesIO(data), 1000,
                                metadata={"flavor-id": "1_aaaaaaaa"}, storage_class="LOCAL")
    assert first.written_by_us and not again.written_by_us
    assert first.sha256 == again.sha256 == hashlib.sha256(data).hexdigest()
    with pytest.raises(Conflict):
        files.upload_stream("p/0_abcdefgh/original/1_aaaaaaaa.mp4", io.BytesIO(b"y" * 1000),
                            1000, metadata={}, storage_class="LOCAL")
    assert files.get_bytes("p/0_abcdefgh/original/1_aaaaaaaa.mp4") == data
    info = files.head("p/0_abcdefgh/original/1_aaaaaaaa.mp4")
    assert info is not None and info.metadata["flavor-id"] == "1_aaaaaaaa"
    facts = directory_inventory(files, "p/")
    assert facts["0_abcdefgh"].flavor_id == "1_aaaaaaaa"
    assert facts["0_abcdefgh"].sha256 == first.sha256


def test_a_short_source_never_becomes_a_file_and_a_changed_file_is_caught(tmp_path):
    files = FileArchive(tmp_path)
    with pytest.raises(IntegrityError):
        files.upload_stream("k/0_abcdefgh/original/1_aaaaaaaa.mp4", io.BytesIO(b"z" * 10), 20,
                            metadata={}, storage_class="LOCAL")
    assert _files(tmp_path) == []
    files.put_bytes("k/0_abcdefgh/captions/1_bbbbbbbb.srt", b"hello", content_type="text/plain")
    (tmp_path / "k/0_abcdefgh/captions/1_bbbbbbbb.srt").write_bytes(b"hellO")  # bit rot
    with pytest.raises(IntegrityError):
        files.get_bytes("k/0_abcdefgh/captions/1_bbbbbbbb.srt")


def test_the_directory_lease_is_held_by_one_daemon_and_taken_over_when_it_lapses(tmp_path):
    now = [1000.0]
    first = FileLease(tmp_path / "lease.json", duration=30, wall=lambda: now[0],
                      monotonic=lambda: now[0])
    second = FileLease(tmp_path / "lease.json", duration=30, wall=lambda: now[0],
                       monotonic=lambda: now[0])
    assert first.acquire() and first.held
    assert not second.acquire() and not second.held
    now[0] += 20
    assert first.acquire()  # renewed
    now[0] += 20
    assert not second.acquire()  # the renewal pushed the expiry on
    now[0] += 31
    assert not first.held
    assert second.acquire() and second.held
    assert not first.acquire()
    second.release()
    assert not (tmp_path / "lease.json").exists()
