"""The record of notices (controller/runtime/notices.py NoticeStore) on both archive ports: the
sandbox's S3 over HTTP and a directory; the markers read back from a listing, as the
observation reads them, and keep grants claimed once."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
from notice_world import PREFIX, folder_archive, s3_archive

from controller.adapters.smtp import Sent
from controller.adapters.storage.inventory import inventory
from controller.runtime.notices import NoticeStore
from policies.durations import Duration, TimeUnit
from policies.keeplink import Grant
from policies.layout import KeyKind, parse_key
from policies.notices import Consequence, Contact, Subject, Timing, assess, letters
from reconcilers.ports import ArchivePort
from sandbox.runner import Sandbox

NOW = 1_800_000_000
TIMING = Timing(Duration(30, TimeUnit.DAY))


@pytest.fixture(params=["s3", "directory"])
def archive(request: pytest.FixtureRequest, make_sandbox: Callable[..., Sandbox],
            tmp_path: Path) -> ArchivePort:
    if request.param == "s3":
        return s3_archive(make_sandbox(entries=1, seed=2))
    return folder_archive(tmp_path / "nas")


def test_a_recorded_notice_is_read_back_from_a_listing(archive: ArchivePort) -> None:
    store = NoticeStore(archive, PREFIX)
    subjects = [Subject("0_aaaaaaa1", "ann", Consequence.SWAP, "r"),
                Subject("0_aaaaaaa2", "ann", Consequence.PURGE, "r")]
    [letter], _ = letters(assess(subjects, {}, TIMING, NOW),
                          {"ann": Contact("ann@example.edu")}.get, TIMING, NOW)
    message = EmailMessage()
    message["Message-ID"] = "<x@example.edu>"
    marks = store.record(letter, NOW + 3, message, Sent("250 OK"))
    loaded = store.load()
    assert {k: sorted(v, key=lambda m: m.entry_id) for k, v in loaded.items()} == {
        m.entry_id: [m] for m in marks}
    # Next cycle: both in their grace period, nothing to send.
    verdicts = assess(subjects, loaded, TIMING, NOW + 3600)
    assert [v.status.value for v in verdicts] == ["grace", "grace"]
    # The audit record sits outside the entries' folders; the markers are markers.
    keys = list(archive.list_keys(PREFIX))
    audit = [k for k in keys if k.startswith(f"{PREFIX}notices/2027/01/15/")]
    assert len(audit) == 1 and parse_key(audit[0], PREFIX) is None
    assert b'"owner": "ann"' in archive.get_bytes(audit[0])
    kinds = {parse_key(k, PREFIX).kind for k in keys if parse_key(k, PREFIX)}  # type: ignore[union-attr]
    assert kinds == {KeyKind.NOTICE}
    # Dropping a record removes its markers (twice is harmless).
    assert store.drop(marks) == 2 and store.drop(marks) == 2
    assert store.load() == {}


def test_keep_grants_are_stored_and_claimed_once(archive: ArchivePort) -> None:
    store = NoticeStore(archive, PREFIX)
    grant = Grant.issue(b"\x01" * 16, "ann", {"0_aaaaaaa1": "One"}, NOW, NOW + 86400)
    assert store.grant(grant.nonce) is None
    store.save_grant(grant)
    assert store.grant(grant.nonce) == grant
    assert not store.used(grant.nonce)
    assert store.claim(grant.nonce) is True
    assert store.used(grant.nonce)
    assert store.claim(grant.nonce) is False


def test_the_observation_still_reads_a_bucket_with_notice_markers(
        make_sandbox: Callable[..., Sandbox]) -> None:
    sandbox = make_sandbox(entries=1, seed=2)
    archive = s3_archive(sandbox)
    store = NoticeStore(archive, PREFIX)
    archive.put_bytes(f"{PREFIX}0_aaaaaaa1/original/1_ffffffff.mp4", b"video",
                      content_type="video/mp4")
    [letter], _ = letters(assess([Subject("0_aaaaaaa1", "ann", Consequence.SWAP, "r")], {},
                                 TIMING, NOW), {"ann": Contact("a@example.edu")}.get,
                          TIMING, NOW)
    store.record(letter, NOW, EmailMessage(), Sent("250 OK"))
    archive.put_bytes(f"{PREFIX}0_aaaaaaa1/notice/garbage.x", b"", content_type="x/y")
    found = inventory(sandbox.s3_client(), sandbox.bucket, PREFIX)
    assert list(found) == ["0_aaaaaaa1"] and found["0_aaaaaaa1"].flavor_id == "1_ffffffff"
    assert [m.entry_id for m in store.load()["0_aaaaaaa1"]] == ["0_aaaaaaa1"]
