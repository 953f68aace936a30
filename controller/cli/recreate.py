"""``karchive recreate ENTRY_ID [-f policy.yaml] [--wait]``: a new Kaltura entry from an archive.

For an entry that was purged (or lost): one request, run by the executor
(``runtime/executor.py``, the same waiting, retries and journal as ``apply``), through the
``recreate`` reconciler (``reconcilers/recreate.py``), which adds a new entry with the
archived metadata, its content (presigned URL from S3, upload from a directory), thumbnails,
captions and attachments, and records ``recreated_as`` in the manifest and the journal. The new
entry id is the only line printed on stdout, so scripts can take it; progress goes to stderr.

A copy in a frozen class is thawed first: without ``--wait`` the command says so and exits 0 (run
it again once the thaw is done, hours later for Glacier); with ``--wait`` it polls until the copy
is readable. Kaltura's import and conversion are always waited for, up to ``--timeout``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from controller.cli.policy import add_policy_option, load
from controller.compose import compose
from controller.errors import KarchiveError
from controller.runtime.executor import Executor, Hooks, Request, RunReport, Timing, Work, ship
from controller.runtime.journal import Journal
from controller.runtime.metrics import CallCounter
from controller.runtime.state import add_state_dir_option, journal_location
from reconcilers.base import Outcome
from reconcilers.recreate import ACTION

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


class _Waits:
    """The executor's waiting, told once per message; a thaw ends the run without --wait."""

    def __init__(self, entry_id: str, wait_for_thaw: bool) -> None:
        self.entry_id = entry_id
        self.wait_for_thaw = wait_for_thaw
        self.told: set[str] = set()
        self.thawing = False

    def __call__(self, item: Work, outcome: Outcome) -> bool:
        if outcome.message not in self.told:
            self.told.add(outcome.message)
            print(f"{self.entry_id}: {outcome.message}", file=sys.stderr, flush=True)
        self.thawing = outcome.thawing
        return self.wait_for_thaw or not outcome.thawing


def run(args: argparse.Namespace) -> int:
    policy = load(args.policy)
    journal = Journal(journal_location(args))
    waits = _Waits(args.entry_id, args.wait)
    try:
        adapters = compose(policy, metrics=CallCounter())
        ctx = adapters.context(journal, placeholder=None)
        ctx.settings = dataclasses.replace(ctx.settings, poll_interval=args.poll,
                                           thaw_poll=args.thaw_poll)
        # One request, no memory of failures: a recreate run again is tried again at once.
        executor = Executor(ctx, policy, timing=Timing(wait_timeout=args.timeout),
                            hooks=Hooks(on_wait=waits, log_results=False))
        report = executor.run_items([Request(args.entry_id, ACTION, (ACTION,))])
        ship(journal, ctx, report)
    except KarchiveError as exc:
        print(f"karchive: error: {exc}", file=sys.stderr)
        return 1
    return _said(args, report, waits)


def _said(args: argparse.Namespace, report: RunReport, waits: _Waits) -> int:
    """What the run's one item came to, in the command's words; its exit code."""
    if report.ship_error is not None:
        print(f"karchive: warning: journal not shipped to the archive ({report.ship_error})",
              file=sys.stderr)
    [item] = report.items
    if item.result == "failed":
        print(f"karchive: error: {item.message}", file=sys.stderr)
        return 1
    if item.result == "waiting":
        if waits.thawing and not args.wait:
            print(f"{args.entry_id}: the archive copy is being thawed; run this command "
                  "again once it is readable, or add --wait", file=sys.stderr)
            return 0
        print(f"karchive: error: {args.entry_id}: still waiting after {args.timeout:.0f} s; "
              "run this command again to continue", file=sys.stderr)
        return EXIT_TIMEOUT
    what = "already recreated" if item.result == "skipped" else "recreated"
    print(f"{args.entry_id}: {what}", file=sys.stderr)
    print(item.message)
    return 0
