"""Two originals of one entry written in the same second: the listing cannot tell which is newer
(ListObjectsV2 counts whole seconds), so the entry's manifest decides — over moto's real S3, in a
bucket of its own (the session's sandbox bucket is the seeded catalogue's)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from controller.adapters.storage.inventory import inventory
from policies.layout import manifest_key

PREFIX = "ties/"


def _same_second_pair(s3: Any, bucket: str, entry_id: str) -> tuple[str, str]:
    """Two original keys whose listed LastModified is equal (a new pair if a second ticked)."""
    for _ in range(5):
        keys = [f"{PREFIX}{entry_id}/original/0_{secrets.token_hex(4)}.mp4" for _ in range(2)]
        for key in keys:
            s3.put_object(Bucket=bucket, Key=key, Body=b"x" * 100)
        listed = {o["Key"]: o["LastModified"]
                  for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}{entry_id}/")
                  ["Contents"]}
        if listed[keys[0]] == listed[keys[1]]:
            return keys[0], keys[1]
        for key in keys:
            s3.delete_object(Bucket=bucket, Key=key)
    pytest.fail("could not write two objects within one second")


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    name = f"karchive-ties-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=name)
    yield name
    for obj in s3.list_objects_v2(Bucket=name).get("Contents", ()):
        s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.mark.parametrize("current", [0, 1])
def test_the_manifest_names_the_current_copy_among_same_second_originals(
    s3: Any, bucket: str, current: int
) -> None:
    entry_id = f"0_{secrets.token_hex(4)}"
    pair = _same_second_pair(s3, bucket, entry_id)
    s3.put_object(Bucket=bucket, Key=manifest_key(PREFIX, entry_id),
                  Body=json.dumps({"original": {"key": pair[current]}}).encode())
    found = inventory(s3, bucket, PREFIX)
    assert found[entry_id].key == pair[current]
