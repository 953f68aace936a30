"""``make demo``: the sandbox with a seeded catalogue, shown through the real clients.

For now it starts the sandbox (2,000 entries, seed 1), prints the variables karchive reads and a
short guide, lists a few entries through the real KalturaClient and the Princeton-era objects
through boto3, then exits — or, with ``--serve``, keeps serving until Ctrl-C. Later the demo also
runs the controller against it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import UTC, datetime

from sandbox.catalogue import ARCHIVED_TAG, LegacyKind
from sandbox.runner import Sandbox

GUIDE = """\
The sandbox is up: a Kaltura API v3 emulator with {entries} seeded entries and a local S3.
  export the variables above (or paste them into your shell), then for example:
    karchive plan -f policy.yaml           what karchive would change
    karchive sandbox play ENTRY_ID         a viewer plays an entry (restore_on_play)
    karchive sandbox fault media.list http_500 --count 2   make the next two lists fail
  In this catalogue: {legacy} entries archived by the old Princeton tool ({placeholders} of them
  placeholders), {broken} in broken states for `karchive health` to find."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__)
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--serve", action="store_true", help="keep serving until Ctrl-C")
    args = parser.parse_args(argv)

    with Sandbox(entries=args.entries, seed=args.seed) as sandbox:
        for key, value in sandbox.env().items():
            print(f"{key}={value}")
        summary = sandbox.summary
        assert summary is not None
        archived = summary.legacy_ids(LegacyKind.ARCHIVED)
        placeholders = summary.legacy_ids(LegacyKind.PLACEHOLDER)
        print()
        print(
            GUIDE.format(
                entries=summary.entries,
                legacy=len(archived) + len(placeholders),
                placeholders=len(placeholders),
                broken=summary.legacy_count - len(archived) - len(placeholders),
            )
        )
        print()
        _show_entries(sandbox)
        _show_bucket(sandbox)
        sys.stdout.flush()
        if args.serve:
            stopping = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stopping.set())
            print("serving; Ctrl-C to stop", file=sys.stderr, flush=True)
            while not stopping.wait(0.5):
                pass
    return 0


def _show_entries(sandbox: Sandbox) -> None:
    from KalturaClient.Plugins.Core import (
        KalturaFilterPager,
        KalturaMediaEntryFilter,
        KalturaMediaEntryOrderBy,
    )

    client = sandbox.kaltura_client()  # the real client, as karchive uses it
    newest = KalturaMediaEntryFilter()
    newest.orderBy = KalturaMediaEntryOrderBy.CREATED_AT_DESC
    legacy = KalturaMediaEntryFilter()
    legacy.tagsMultiLikeOr = ARCHIVED_TAG
    for title, entry_filter in (("Newest entries", newest), ("Tagged archived_to_s3", legacy)):
        listed = client.media.list(entry_filter, KalturaFilterPager(pageSize=5))
        print(f"{title} (media.list, {listed.totalCount} in all):")
        for entry in listed.objects:
            played = (
                datetime.fromtimestamp(entry.lastPlayedAt, UTC).date().isoformat()
                if entry.lastPlayedAt
                else "never"
            )
            created = datetime.fromtimestamp(entry.createdAt, UTC).date().isoformat()
            print(
                f"  {entry.id}  created {created}  played {played:<10}  plays {entry.plays:<5}"
                f"  {entry.name}  [{entry.tags}]"
            )


def _show_bucket(sandbox: Sandbox) -> None:
    listed = sandbox.s3_client().list_objects_v2(Bucket=sandbox.bucket, MaxKeys=5)
    print(f"Bucket {sandbox.bucket} (ListObjectsV2, first {listed['KeyCount']}):")
    for obj in listed.get("Contents", []):
        print(f"  {obj['Key']}  {obj['Size']:>9} bytes  {obj.get('StorageClass', 'STANDARD')}")


if __name__ == "__main__":
    sys.exit(main())
