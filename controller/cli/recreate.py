"""``karchive recreate ENTRY_ID [-f policy.yaml] [--wait]``: a new Kaltura entry from an archive.

For an entry that was purged (or lost): ``reconcilers.recreate`` adds a new entry with the
archived metadata, its content (presigned URL from S3, upload from a directory), thumbnails,
captions and attachments, and records ``recreated_as`` in the manifest and the journal. The new
entry id is the only line printed on stdout, so scripts can take it; progress goes to stderr.

A copy in a frozen class is thawed first: without ``--wait`` the command says so and exits 0 (run
it again once the thaw is done, hours later for Glacier); with ``--wait`` it polls until the copy
is readable. Kaltura's import and conversion are always waited for, up to ``--timeout``.
"""

from __future__ import annotations

import argparse
import sys
import time

from controller.cli.policy import add_policy_option, load
from controller.errors import KarchiveError
from controller.runtime.journal import Journal, add_state_dir_option, journal_location

EXIT_TIMEOUT = 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("recreate", help="create a new Kaltura entry from an archived one")
    parser.add_argument("entry_id", metavar="ENTRY_ID", help="the archived (deleted) entry's id")
    add_policy_option(parser)
    parser.add_argument("--wait", action="store_true",
                        help="wait for a Glacier thaw instead of exiting to be run again")
    parser.add_argument("--timeout", type=float, default=3600.0, metavar="SECONDS",
                        help="give up waiting after this long (default 3600)")
    parser.add_argument("--poll", type=float, default=2.0, metavar="SECONDS",
                        help="how often to look at Kaltura's conversion (default 2)")
    parser.add_argument("--thaw-poll", type=float, default=60.0, metavar="SECONDS",
                        help="with --wait, how often to look at the thaw (default 60)")
    parser.add_argument("--journal", metavar="PATH",
                        help="journal folder or .jsonl file (default: journal/ in the state "
                             "directory)")
    add_state_dir_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from controller.adapters.kaltura.session import KalturaSession
    from controller.adapters.storage.backend import connect
    from controller.runtime.executor import build_context
    from reconcilers.base import Result
    from reconcilers.recreate import THAW_POLL, Recreate

    policy = load(args.policy)
    journal = Journal(journal_location(args))
    try:
        ctx = build_context(policy, KalturaSession(policy.kaltura), connect(policy.storage),
                            journal=journal, placeholder=None)
        ctx.settings = dataclasses.replace(ctx.settings, poll_interval=args.poll)
        deadline = time.monotonic() + args.timeout
        told: set[str] = set()
        while True:
            outcome = Recreate().run(args.entry_id, ctx)
            if outcome.result is not Result.WAITING:
                break
            thawing = outcome.retry_after == THAW_POLL
            if outcome.message not in told:
                told.add(outcome.message)
                print(f"{args.entry_id}: {outcome.message}", file=sys.stderr, flush=True)
            if thawing and not args.wait:
                print(f"{args.entry_id}: the archive copy is being thawed; run this command "
                      "again once it is readable, or add --wait", file=sys.stderr)
                return 0
            if time.monotonic() > deadline:
                print(f"karchive: error: {args.entry_id}: still waiting after {args.timeout:.0f}"
                      " s; run this command again to continue", file=sys.stderr)
                return EXIT_TIMEOUT
            pause = args.thaw_poll if thawing else args.poll
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        journal.ship_or_warn(ctx.archive, policy.storage.prefix)
    except KarchiveError as exc:
        print(f"karchive: error: {exc}", file=sys.stderr)
        return 1
    if outcome.result is Result.SKIPPED:
        print(f"{args.entry_id}: already recreated", file=sys.stderr)
    else:
        print(f"{args.entry_id}: recreated", file=sys.stderr)
    print(outcome.message)
    return 0
