"""Logging: human and JSON lines, the entry id as a field, secrets scrubbed."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from controller.runtime import logs


@pytest.fixture
def capture() -> Iterator[tuple[io.StringIO, logging.Logger]]:
    stream = io.StringIO()
    yield stream, logging.getLogger("karchive.test")
    logs.configure("human", stream=io.StringIO())  # detach the handler from this test's stream


def test_json_lines_carry_the_entry_id_as_a_field(capture) -> None:  # type: ignore[no-untyped-def]
    stream, log = capture
    logs.configure("json", stream=stream)
    logs.for_entry(log, "0_abc", action="archive").info("archived %d bytes", 42)
    record = json.loads(stream.getvalue().splitlines()[-1])
    assert record["message"] == "archived 42 bytes"
    assert record["entry_id"] == "0_abc" and record["action"] == "archive"
    assert record["level"] == "info" and record["logger"] == "karchive.test"


def test_human_lines_append_fields_after_the_message(capture) -> None:  # type: ignore[no-untyped-def]
    stream, log = capture
    logs.configure("human", stream=stream)
    log.warning("copy failed", extra={"entry_id": "0_xyz", "reason": "size mismatch"})
    line = stream.getvalue().splitlines()[-1]
    assert "WARNING" in line and "copy failed" in line
    assert line.endswith('entry_id=0_xyz reason="size mismatch"')


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("GET /api_v3/service/media/action/list?ks=djJ8MTAwfHNlY3JldHN0dWZmMTIzNDU2Nzg5&x=1",
         "djJ8MTAwfHNlY3JldHN0dWZmMTIzNDU2Nzg5"),
        ("https://b.s3.amazonaws.com/k?X-Amz-Signature=abcdef0123456789&X-Amz-Expires=60",
         "abcdef0123456789"),
        ('{"ks": "djJ8MTAwfHNlY3JldHN0dWZmMTIzNDU2Nzg5"}', "djJ8MTAwfHNlY3JldHN0dWZmMTIzNDU2Nzg5"),
        ("Authorization: AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=ff00", "Signature=ff00"),
        ("admin_secret=hunter2hunter2", "hunter2hunter2"),
    ],
)
def test_secret_shapes_are_scrubbed(capture, text: str, leaked: str) -> None:  # type: ignore[no-untyped-def]
    stream, log = capture
    logs.configure("json", stream=stream)
    log.info("request %s", text)
    out = stream.getvalue()
    assert leaked not in out and logs.REDACTED in out


def test_registered_secret_values_are_scrubbed_from_messages_fields_and_tracebacks(
    capture,  # type: ignore[no-untyped-def]
) -> None:
    stream, log = capture
    scrubber = logs.configure("human", stream=stream)
    scrubber.add("s3cr3t-admin-value")
    try:
        raise RuntimeError("login with s3cr3t-admin-value refused")
    except RuntimeError:
        log.exception("session failed", extra={"detail": "key s3cr3t-admin-value"})
    out = stream.getvalue()
    assert "s3cr3t-admin-value" not in out
    assert "RuntimeError" in out and out.count(logs.REDACTED) >= 3


def test_secrets_from_env_finds_the_known_variables() -> None:
    env = {"KALTURA_ADMIN_SECRET": "abc123456", "AWS_SECRET_ACCESS_KEY": "zzz999999", "HOME": "/h"}
    assert sorted(logs.secrets_from_env(env)) == ["abc123456", "zzz999999"]
