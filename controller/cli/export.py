"""``karchive export ENTRY_ID… --to DIR [-f policy.yaml] [--wait]``: archived entries to a folder.

What the old tool's local backups were, from the archive instead of from Kaltura (the archive
port of ``controller/compose.py``; the work is ``runtime/export.py``): for each entry,
``DIR/{entry_id}/`` receives the source video, captions, attachments and thumbnails under the
archive's own relative paths (``original/{flavor_id}.{ext}``, ``captions/…``) and, last,
``manifest.json``. Every file is streamed to a temporary name in its folder, fsync'd, checked
against the manifest (size, and sha256 where recorded — always for the video) and only then
renamed into place: a partial or wrong file is never left under a final name. A file already
exported with the right checksum is not fetched again, so a re-run finishes an interrupted one.

A copy in a frozen class is thawed first: the thaw is requested and reported, and the entry is
left for a later run — or, with ``--wait``, polled until readable. Exit 0 when every entry was
exported, 2 when some wait on a thaw, 1 on any error (the other entries are still exported).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from controller.cli.policy import add_policy_option, load
from controller.compose import compose
from controller.errors import KarchiveError
from controller.runtime.export import export_entry
from controller.runtime.metrics import CallCounter

EXIT_THAWING = 2


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("export", help="download archived entries to a folder, verified")
    parser.add_argument("entry_ids", nargs="+", metavar="ENTRY_ID")
    parser.add_argument("--to", required=True, metavar="DIR", help="the folder to write into")
    add_policy_option(parser)
    parser.add_argument("--wait", action="store_true",
                        help="wait for Glacier thaws instead of leaving those entries for later")
    parser.add_argument("--thaw-poll", type=float, default=60.0, metavar="SECONDS",
                        help="with --wait, how often to look at a thaw (default 60)")
    parser.add_argument("--timeout", type=float, default=48 * 3600.0, metavar="SECONDS",
                        help="with --wait, give up after this long (default 48 h)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    policy = load(args.policy)
    target = Path(args.to)
    try:
        target.mkdir(parents=True, exist_ok=True)
        archive = compose(policy, metrics=CallCounter()).store.archive()
    except OSError as exc:
        print(f"karchive: error: cannot create {target} ({exc.strerror})", file=sys.stderr)
        return 1
    except KarchiveError as exc:
        print(f"karchive: error: {exc}", file=sys.stderr)
        return 1
    restore = policy.storage.restore
    pending = list(dict.fromkeys(args.entry_ids))
    failed = 0
    deadline = time.monotonic() + args.timeout
    while pending:
        thawing: list[str] = []
        for entry_id in pending:
            try:
                if export_entry(archive, policy.storage.prefix, entry_id, target,
                                days=restore.days, tier=restore.tier.value):
                    print(f"{entry_id}: exported to {target / entry_id}", file=sys.stderr)
                else:
                    thawing.append(entry_id)
            except KarchiveError as exc:
                failed += 1
                print(f"karchive: error: {entry_id}: {exc}", file=sys.stderr)
        pending = thawing
        if not pending:
            break
        if not args.wait or time.monotonic() > deadline:
            print(f"{len(pending)} entr{'y' if len(pending) == 1 else 'ies'} wait on a thaw "
                  f"({', '.join(pending)}); run this again once readable, or add --wait",
                  file=sys.stderr)
            return 1 if failed else EXIT_THAWING
        time.sleep(args.thaw_poll)
    return 1 if failed else 0
