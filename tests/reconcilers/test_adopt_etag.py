"""The ETag arithmetic adoption relies on, against boto3's own part sizing and moto's ETags.

The part size a ``upload_file`` with boto3's defaults uses is read from s3transfer itself
(``ChunksizeAdjuster``), not restated; the ETag of an actual multipart upload is the one moto
computes over HTTP.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from boto3.s3.transfer import TransferConfig
from s3transfer.utils import ChunksizeAdjuster

from reconcilers.adopt import EtagHasher, boto3_part_size, etag_part_size

MiB = 1 << 20


@pytest.mark.parametrize("size", [8 * MiB, 8 * MiB + 1, 80 * MiB, 10_000 * 8 * MiB,
                                  10_000 * 8 * MiB + 1, 300 * 1024 * MiB, 5 * 1024**4])
def test_the_part_size_is_boto3s_for_every_size(size: int) -> None:
    expected = ChunksizeAdjuster().adjust_chunksize(TransferConfig().multipart_chunksize, size)
    assert boto3_part_size(size) == expected


@pytest.mark.parametrize(
    ("etag", "size", "part"),
    [
        ('"d41d8cd98f00b204e9800998ecf8427e"', 0, 0),  # a single PUT: plain MD5
        ("0123456789abcdef0123456789abcdef", 8 * MiB - 1, 0),
        ("0123456789abcdef0123456789abcdef-2", 9 * MiB, 8 * MiB),
        ("0123456789abcdef0123456789abcdef-1", 8 * MiB, 8 * MiB),
        # Parts that 8 MiB-based sizing cannot explain prove nothing.
        ("0123456789abcdef0123456789abcdef-3", 9 * MiB, None),
        ("0123456789abcdef0123456789abcdef", 9 * MiB, None),  # would have been multipart
        ("0123456789abcdef0123456789abcdef-1", 1 * MiB, None),  # would have been one PUT
        ("not-an-etag", 9 * MiB, None),
        ("0123456789abcdef0123456789abcdef-x", 9 * MiB, None),
    ],
)
def test_an_etag_is_explained_by_boto3s_defaults_or_not_at_all(etag: str, size: int,
                                                                part: int | None) -> None:
    assert etag_part_size(etag, size) == part


def test_the_hasher_matches_moto_for_any_chunking(s3, tmp_path) -> None:
    s3.create_bucket(Bucket="etag-check")
    rng = random.Random(7)
    for size in (0, 1000, 8 * MiB - 1, 8 * MiB, 17 * MiB + 3):
        data = rng.randbytes(size)
        path = tmp_path / "video"
        path.write_bytes(data)
        s3.upload_file(str(path), "etag-check", f"v{size}", Config=TransferConfig())
        etag = s3.head_object(Bucket="etag-check", Key=f"v{size}")["ETag"].strip('"')
        part = etag_part_size(etag, size)
        assert part is not None, (size, etag)
        hasher = EtagHasher(part)
        at = 0
        while at < size:  # chunks that never line up with the parts
            step = rng.randrange(1, 3 * MiB)
            hasher.update(data[at:at + step])
            at += step
        assert hasher.hexdigest() == etag
        if size:
            other = EtagHasher(part)
            other.update(hashlib.sha256(data).digest() + data[32:])
            assert other.hexdigest() != etag
