"""The copy path's memory and its requests: the part buffers an upload holds stay within the
policy's share (``limits.copy_memory`` / ``limits.concurrency``, ``limits.parallel_parts``), and
the data client's bodies are covered by signed checksums instead of a payload hash.

Against the session sandbox's moto over HTTP, through karchive's own S3 clients.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pytest

from controller.adapters.storage.s3 import make_s3_client
from controller.adapters.storage.writer import S3Archive, parts_in_flight
from controller.compose import compose
from controller.runtime.journal import Journal
from policies.loader import parse_policy
from policies.schema import StorageSettings

MiB = 1 << 20
PART = 5 * MiB  # S3's smallest part: the test moves little


class CountingSource:
    """``size`` deterministic bytes, counting how many have been read so far."""

    def __init__(self, size: int) -> None:
        self.size, self.read_so_far = size, 0
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.read_so_far if n < 0 else min(n, self.size - self.read_so_far)
        data = (self.read_so_far // PART % 251).to_bytes(1, "big") * n
        self.read_so_far += n
        self.digest.update(data)
        return data

    def close(self) -> None:
        return None


class HeldParts:
    """The S3 metrics sink: on each finished UploadPart, how many parts' bytes were read from
    the source but not yet uploaded (what the upload held in memory), at its highest."""

    def __init__(self, source: CountingSource) -> None:
        self.source, self.uploaded, self.highest = source, 0, 0
        self._lock = threading.Lock()

    def s3_call(self, operation: str, outcome: str) -> None:
        if operation != "UploadPart":
            return
        with self._lock:
            # The part that just finished was held until now: count it before dropping it.
            held = -(-(self.source.read_so_far - self.uploaded * PART) // PART)
            self.highest = max(self.highest, held)
            self.uploaded += 1


@pytest.fixture
def storage(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> StorageSettings:
    for name, value in sandbox.env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    return StorageSettings(bucket=sandbox.bucket, endpoint_url=sandbox.env()["AWS_ENDPOINT_URL"],
                           storage_class="STANDARD")


@pytest.mark.parametrize(("parallel", "memory", "held"), [
    (4, 3 * PART, 3),    # the share holds 3 parts: 2 uploading and the one being read
    (4, None, 5),        # no budget: parallel_parts uploading and the one being read
    (1, 10 * PART, 2),   # parallel_parts is the cap when the share would allow more
    (4, PART, 2),        # a share smaller than 2 parts still moves, 1 part at a time
])
def test_an_upload_holds_no_more_parts_than_the_policy_lets_it(
        storage: StorageSettings, parallel: int, memory: int | None, held: int) -> None:
    assert parts_in_flight(PART, parallel, memory) + 1 == held
    source = CountingSource(12 * PART + 1)
    sink = HeldParts(source)
    archive = S3Archive(make_s3_client(storage), str(storage.bucket), parallel_parts=parallel,
                        part_memory=memory, metrics=sink,
                        data_client=make_s3_client(storage, kind="data"))
    key = f"tests/copy-memory/{parallel}-{memory}"
    result = archive.upload_stream(key, source, source.size, metadata={"flavor-id": "0_x"},
                                   storage_class="STANDARD", part_size=PART)
    assert (result.parts, result.sha256) == (13, source.digest.hexdigest())
    assert 1 <= sink.highest <= held
    archive.delete(key)


def test_the_reconcilers_archive_takes_its_share_from_the_policy(sandbox: Any) -> None:
    env = sandbox.env()
    policy = parse_policy(f"""
version: 1
kaltura: {{service_url: "{env['KALTURA_SERVICE_URL']}", partner_id: {env['KALTURA_PARTNER_ID']},
          admin_secret: "{env['KALTURA_ADMIN_SECRET']}"}}
storage: {{bucket: {sandbox.bucket}, endpoint_url: "{env['AWS_ENDPOINT_URL']}"}}
limits: {{concurrency: 8, parallel_parts: 3, copy_memory: 384MiB}}
""", "policy.yaml")
    archive = compose(policy).context(Journal(), placeholder=None).archive
    assert isinstance(archive, S3Archive)
    assert (archive.parallel_parts, archive.part_memory) == (3, 48 * MiB)
    # 48 MiB holds 3 parts of 16 MiB: 2 upload while the third is read.
    assert parts_in_flight(16 * MiB, archive.parallel_parts, archive.part_memory) == 2


def test_data_bodies_are_covered_by_signed_checksums_and_parts_start_small(
        storage: StorageSettings) -> None:
    data = make_s3_client(storage, kind="data")
    sent: dict[str, dict[str, str]] = {}

    def record(request: Any, event_name: str, **_: Any) -> None:
        sent[event_name.rsplit(".", 1)[-1]] = {
            k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}

    data.meta.events.register("before-send.s3", record)
    archive = S3Archive(make_s3_client(storage), str(storage.bucket), data_client=data)
    source = CountingSource(2 * PART + 7)
    key = "tests/copy-memory/signed"
    result = archive.upload_stream(key, source, source.size, metadata={"flavor-id": "0_x"},
                                   storage_class="STANDARD", part_size=8 * MiB)
    # Parts of 5 MiB (S3's smallest, the first) and 8 MiB: two for 10 MiB and 7 bytes.
    assert result.parts == 2
    body = archive.get_bytes(key)
    assert hashlib.sha256(body).hexdigest() == result.sha256 == source.digest.hexdigest()
    part = sent["UploadPart"]
    assert part["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert "x-amz-checksum-sha256" in _signed(part)
    complete = sent["CompleteMultipartUpload"]
    assert "content-md5" in _signed(complete)
    archive.delete(key)


def _signed(headers: dict[str, Any]) -> set[str]:
    """The header names the SigV4 Authorization says it signed."""
    auth = str(headers["Authorization"])
    return set(auth.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";"))
