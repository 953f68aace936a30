"""What the archive inventory costs in memory and time when every entry has a copy.

    .venv/bin/python bench/inventory_bench.py [--sizes 100000,1000000]

A library whose entries are all archived has one original, a manifest and usually a
placeholder marker per entry in its archive. For each size a child process reads ListObjectsV2
pages of such an archive (generated in process, shaped as boto3 returns them: the S3 service
is not what is measured) two ways, and reports its own peak RSS (``VmHWM``) and the seconds:

    mapping   the baseline: every copy held as an ``ArchiveFacts`` in one dict (what the
              inventory returned before the ledger)
    ledger    ``adapters/storage/inventory.py`` as the observer runs it: each object into the
              ledger on disk, settled entry by entry, then asked a page of 2,000 entries at a
              time, as the observer's pages ask it

Target: the ledger's peak RSS flat in the archive's size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.plan_bench import peak_rss  # noqa: E402

PREFIX = "karchive/"
PAGE = 2000  # the observer's page of entries


def entry_id(n: int) -> str:
    return f"0_{n:08x}"


class Listing:
    """A bucket of ``size`` archived entries, answering ListObjectsV2 as boto3 does."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.when = datetime(2026, 1, 1, tzinfo=UTC)

    def _objects(self, n: int) -> list[dict[str, Any]]:
        folder = f"{PREFIX}{entry_id(n)}/"
        return [
            {"Key": f"{folder}manifest.json", "Size": 900, "StorageClass": "STANDARD",
             "ETag": '"m"', "LastModified": self.when},
            {"Key": f"{folder}original/0_f{n:07x}.mp4", "Size": 250_000_000 + n,
             "StorageClass": "GLACIER", "ETag": f'"{n:032x}-30"', "LastModified": self.when},
            {"Key": f"{folder}placeholder/0_p{n:07x}", "Size": 0, "StorageClass": "STANDARD",
             "ETag": '"d41d8cd98f00b204e9800998ecf8427e"', "LastModified": self.when},
        ]

    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        if kwargs.get("Delimiter"):  # the root: only the prefix, folded
            return {"Contents": [], "CommonPrefixes": [{"Prefix": PREFIX}], "IsTruncated": False}
        start = int(kwargs.get("ContinuationToken") or 0)
        per = 1000 // 3
        objects = [o for n in range(start, min(start + per, self.size)) for o in self._objects(n)]
        more = start + per < self.size
        return {"Contents": objects, "IsTruncated": more,
                **({"NextContinuationToken": str(start + per)} if more else {})}


def child(size: int, way: str) -> None:
    from controller.adapters.storage.inventory import _facts, _pages, inventory
    from policies.layout import ENTRY_FOLDER, KeyKind, parse_key

    listing = Listing(size)
    started = time.monotonic()
    if way == "mapping":
        held = {}
        for page in _pages(listing, "bench", PREFIX, None, None):
            for obj in page.get("Contents", ()):
                parsed = parse_key(obj["Key"], PREFIX)
                if parsed is not None and parsed.kind is KeyKind.ORIGINAL:
                    held[parsed.entry_id] = _facts(obj, ENTRY_FOLDER, parsed.asset_id)
        found = sum(1 for n in range(size) if entry_id(n) in held)
    else:
        copies = inventory(listing, "bench", PREFIX)
        found = 0
        for start in range(0, size, PAGE):
            archived, _ = copies.lookup([entry_id(n) for n in range(start, min(start + PAGE,
                                                                                size))])
            found += len(archived)
        copies.close()
    print(json.dumps({"found": found, "seconds": time.monotonic() - started,
                      "peak_rss": peak_rss()}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--child", nargs=2, metavar=("SIZE", "WAY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(int(args.child[0]), args.child[1])
        return 0
    rows = []
    for size in (int(s) for s in args.sizes.split(",") if s):
        for way in ("mapping", "ledger"):
            done = subprocess.run([sys.executable, __file__, "--child", str(size), way],
                                  capture_output=True, text=True, check=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            assert row["found"] == size, row
            rows.append({"size": size, "way": way, **row})
            print(f"  measured {way} {size:,}: {row['seconds']:.1f}s", file=sys.stderr)
    print(f"command: {sys.executable} bench/inventory_bench.py --sizes {args.sizes}")
    print()
    print(f"{'copies':>10}{'way':>9}{'seconds':>9}{'peak RSS':>11}")
    for r in rows:
        print(f"{r['size']:>10,}{r['way']:>9}{r['seconds']:>9.1f}{r['peak_rss'] / 2**20:>7.0f} MiB")
    print()
    for size in sorted({r["size"] for r in rows}):
        base, led = (next(r for r in rows if r["size"] == size and r["way"] == w)
                     for w in ("mapping", "ledger"))
        print(f"at {size:,} copies: the ledger peaks at {led['peak_rss'] / 2**20:.0f} MiB "
              f"against the mapping's {base['peak_rss'] / 2**20:.0f} MiB "
              f"({base['peak_rss'] / max(led['peak_rss'], 1):.1f}x less), "
              f"{led['seconds'] / max(base['seconds'], 1e-9):.1f}x the time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
