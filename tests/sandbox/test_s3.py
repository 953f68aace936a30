"""The local S3: boto3 over HTTP against moto, Glacier semantics, restore delay, persistence.

Restore timing uses moto's "manual" progression (a restore completes after N reads of the
object), so no test sleeps. moto's transitions are process-global: the fixture resets them.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox.catalogue import LegacyKind
from sandbox.runner import Sandbox
from sandbox.s3 import LocalS3

RESTORE = {"Days": 1, "GlacierJobParameters": {"Tier": "Bulk"}}


@pytest.fixture(scope="module")
def local_s3() -> Iterator[LocalS3]:
    with LocalS3("karchive-s3-tests") as started:
        yield started


@pytest.fixture
def store(local_s3: LocalS3) -> Iterator[tuple[Any, str]]:
    yield local_s3.client(), local_s3.bucket
    local_s3.set_restore_delay(0)  # back to moto's default: restores complete at once


def _key() -> str:
    return f"0_{uuid.uuid4().hex[:8]}"


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _put_glacier(client: Any, bucket: str, body: bytes = b"video bytes") -> str:
    key = _key()
    client.put_object(Bucket=bucket, Key=key, Body=body, StorageClass="GLACIER")
    return key


def test_a_glacier_object_cannot_be_read_before_a_restore(store: tuple[Any, str]) -> None:
    client, bucket = store
    key = _put_glacier(client, bucket)
    with pytest.raises(ClientError) as exc:
        client.get_object(Bucket=bucket, Key=key)
    assert _error(exc) == ("InvalidObjectState", 403)
    assert client.head_object(Bucket=bucket, Key=key)["StorageClass"] == "GLACIER"
    assert "Restore" not in client.head_object(Bucket=bucket, Key=key)


def test_a_restore_is_accepted_with_202_and_a_repeat_after_it_completed_with_200(
    store: tuple[Any, str],
) -> None:
    client, bucket = store
    key = _put_glacier(client, bucket, b"abc")
    first = client.restore_object(Bucket=bucket, Key=key, RestoreRequest=RESTORE)
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 202
    head = client.head_object(Bucket=bucket, Key=key)
    assert head["Restore"].startswith('ongoing-request="false", expiry-date=')
    again = client.restore_object(Bucket=bucket, Key=key, RestoreRequest=RESTORE)
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"abc"


def test_with_a_restore_delay_the_restore_header_shows_ongoing_then_done(
    local_s3: LocalS3, store: tuple[Any, str]
) -> None:
    client, bucket = store
    key = _put_glacier(client, bucket, b"thawed")
    local_s3.set_restore_transition({"progression": "manual", "times": 3})
    client.restore_object(Bucket=bucket, Key=key, RestoreRequest=RESTORE)
    headers = [client.head_object(Bucket=bucket, Key=key)["Restore"] for _ in range(6)]
    assert headers[0] == 'ongoing-request="true"'
    assert headers[-1].startswith('ongoing-request="false", expiry-date=')
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"thawed"


def test_a_restore_while_one_is_running_is_refused_with_409(
    local_s3: LocalS3, store: tuple[Any, str]
) -> None:
    client, bucket = store
    key = _put_glacier(client, bucket)
    local_s3.set_restore_transition({"progression": "manual", "times": 100})
    client.restore_object(Bucket=bucket, Key=key, RestoreRequest=RESTORE)
    with pytest.raises(ClientError) as exc:
        client.restore_object(Bucket=bucket, Key=key, RestoreRequest=RESTORE)
    assert _error(exc) == ("RestoreAlreadyInProgress", 409)


def test_a_restore_of_a_standard_object_is_an_invalid_object_state(
    store: tuple[Any, str],
) -> None:
    client, bucket = store
    key = _key()
    client.put_object(Bucket=bucket, Key=key, Body=b"x")
    with pytest.raises(ClientError) as exc:
        client.restore_object(Bucket=bucket, Key=key, RestoreRequest=RESTORE)
    assert _error(exc)[0] == "InvalidObjectState"


def test_list_objects_v2_reports_restore_status_only_for_requested_restores(
    local_s3: LocalS3, store: tuple[Any, str]
) -> None:
    client, bucket = store
    prefix = f"listing-{uuid.uuid4().hex[:6]}/"
    client.put_object(Bucket=bucket, Key=prefix + "standard", Body=b"s")
    for name in ("cold", "thawing", "thawed"):
        client.put_object(Bucket=bucket, Key=prefix + name, Body=b"g", StorageClass="GLACIER")
    client.restore_object(Bucket=bucket, Key=prefix + "thawed", RestoreRequest=RESTORE)
    local_s3.set_restore_transition({"progression": "manual", "times": 100})
    client.restore_object(Bucket=bucket, Key=prefix + "thawing", RestoreRequest=RESTORE)

    listed = client.list_objects_v2(
        Bucket=bucket, Prefix=prefix, OptionalObjectAttributes=["RestoreStatus"]
    )
    status = {o["Key"].removeprefix(prefix): o.get("RestoreStatus") for o in listed["Contents"]}
    assert status["standard"] is None and status["cold"] is None
    assert status["thawing"] == {"IsRestoreInProgress": True}
    assert status["thawed"]["IsRestoreInProgress"] is False
    assert status["thawed"]["RestoreExpiryDate"] is not None
    plain = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    assert all("RestoreStatus" not in o for o in plain["Contents"])


def test_if_none_match_refuses_to_overwrite_a_put_or_a_multipart_upload(
    store: tuple[Any, str],
) -> None:
    client, bucket = store
    key = _key()
    client.put_object(Bucket=bucket, Key=key, Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key=key, Body=b"second", IfNoneMatch="*")
    assert _error(exc) == ("PreconditionFailed", 412)

    upload = client.create_multipart_upload(Bucket=bucket, Key=key, StorageClass="GLACIER")
    part = client.upload_part(
        Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"p" * 1024
    )
    with pytest.raises(ClientError) as exc:
        client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
            IfNoneMatch="*",
        )
    assert _error(exc) == ("PreconditionFailed", 412)
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == b"first"


def test_racing_conditional_completes_have_exactly_one_winner(store: tuple[Any, str]) -> None:
    # S3 decides If-None-Match atomically; moto alone checks, then assembles and writes, so
    # without the sandbox's fix every one of these writers "wins" (seen: 3-4 of 4 each time).
    client, bucket = store
    writers = 4
    for _ in range(3):
        key = _key()
        uploads = []
        for n in range(writers):
            upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            parts = [{"PartNumber": p, "ETag": client.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=p,
                Body=bytes([n]) * (5 << 20))["ETag"]} for p in (1, 2)]
            uploads.append((upload_id, parts))
        barrier = threading.Barrier(writers)

        def complete(upload: tuple[str, list[dict[str, Any]]], key: str = key,
                     barrier: threading.Barrier = barrier) -> bool:
            barrier.wait()
            try:
                client.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload[0],
                    MultipartUpload={"Parts": upload[1]}, IfNoneMatch="*")
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "PreconditionFailed"
                return False
            return True

        with ThreadPoolExecutor(writers) as pool:
            won = [n for n, ok in enumerate(pool.map(complete, uploads)) if ok]
        assert len(won) == 1
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == bytes(won) * (10 << 20)
        client.delete_object(Bucket=bucket, Key=key)


def test_multipart_uploads_are_listed_with_when_they_were_initiated(
    store: tuple[Any, str],
) -> None:
    # moto lists every upload as initiated in 2010; S3 (and so the sandbox) says when.
    client, bucket = store
    key = _key()
    before = datetime.now(UTC)
    first = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    time.sleep(0.05)
    second = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    listed = {u["UploadId"]: u["Initiated"]
              for u in client.list_multipart_uploads(Bucket=bucket, Prefix=key)["Uploads"]}
    for upload_id in (first, second):
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    assert before - timedelta(seconds=1) <= listed[first] < listed[second]
    assert listed[second] <= datetime.now(UTC) + timedelta(seconds=1)


def test_a_sandbox_restore_delay_is_a_timed_transition_counted_from_the_request(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    sandbox = make_sandbox(entries=0, restore_delay=3600)
    with urllib.request.urlopen(
        f"{sandbox.s3_url}/moto-api/state-manager/get-transition?model_name=s3::keyrestore"
    ) as response:
        assert json.loads(response.read()) == {"progression": "time", "seconds": 3600}
    client = sandbox.s3_client()
    key = _put_glacier(client, sandbox.bucket)
    client.restore_object(Bucket=sandbox.bucket, Key=key, RestoreRequest=RESTORE)
    # A fresh object reads "done" at once in plain moto; here it waits the hour.
    assert client.head_object(Bucket=sandbox.bucket, Key=key)["Restore"] == (
        'ongoing-request="true"'
    )
    with pytest.raises(ClientError) as exc:
        client.get_object(Bucket=sandbox.bucket, Key=key)
    assert _error(exc)[0] == "InvalidObjectState"


def test_stopping_a_sandbox_unsets_the_restore_delay_it_set(
    make_sandbox: Callable[..., Sandbox], local_s3: LocalS3
) -> None:
    make_sandbox(entries=0, restore_delay=600).stop()
    with urllib.request.urlopen(
        f"{local_s3.url}/moto-api/state-manager/get-transition?model_name=s3::keyrestore"
    ) as response:
        assert json.loads(response.read()) == {"progression": "immediate"}


def test_kaltura_state_and_bucket_survive_a_restart_from_a_state_file(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    state = tmp_path / "sandbox.json"
    first = make_sandbox(entries=150, seed=4, state_file=state)
    assert first.summary is not None
    entry_id = first.summary.legacy_ids(LegacyKind.ARCHIVED)[0]
    played = first.backend.record_play(entry_id).plays  # type: ignore[union-attr]
    client = first.s3_client()
    client.put_object(
        Bucket=first.bucket,
        Key=f"archive/{entry_id}/manifest.json",
        Body=b"{}",
        StorageClass="DEEP_ARCHIVE",
        Metadata={"entry-id": entry_id},
    )
    legacy = {o.key: o for o in first.summary.objects}
    first.stop()

    second = make_sandbox(entries=150, seed=99, state_file=state)
    assert second.summary is None  # loaded, not generated: the seed does not matter
    assert second.backend.get_entry(entry_id).plays == played  # type: ignore[union-attr]
    client = second.s3_client()
    keys = {o["Key"]: o for o in client.list_objects_v2(Bucket=second.bucket)["Contents"]}
    assert set(keys) == set(legacy) | {f"archive/{entry_id}/manifest.json"}
    head = client.head_object(Bucket=second.bucket, Key=f"archive/{entry_id}/manifest.json")
    assert head["StorageClass"] == "DEEP_ARCHIVE" and head["Metadata"] == {"entry-id": entry_id}
    for key, obj in legacy.items():
        assert keys[key]["Size"] == obj.content.size
        assert keys[key]["StorageClass"] == obj.storage_class
