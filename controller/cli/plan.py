"""``karchive plan``: the pipeline (observe → classify → diff), printed; nothing applied.

Terraform's contract, for people and for scripts: a listing (``+ archive``, ``~ replace``,
``← restore``, ``! unhealthy``) and a summary line, or "No changes."; ``--json`` prints the plan
file format (with ``format_version``) instead; ``--out FILE`` saves it for ``karchive apply FILE``
(written to a temporary file and renamed, so an interrupted plan never leaves half a file);
``--detailed-exitcode`` exits 0 with no changes, 2 with changes, 1 on error; ``--shard I/N``
plans what that shard's daemon would (its entries, its share of the budgets). Nothing is written to
Kaltura or S3: observation only reads (design.md invariant 5).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from controller.cli.policy import add_policy_option, add_shard_option, load, shard_of
from controller.compose import compose
from controller.errors import KarchiveError
from controller.runtime.metrics import CallCounter
from controller.runtime.pipeline import Pipeline
from controller.runtime.progress import NoProgress, Progress, ProgressSink

EXIT_CHANGES = 2


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("plan", help="show what apply would change, and change nothing")
    add_policy_option(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--out", metavar="FILE", help="save the plan for `karchive apply FILE`")
    parser.add_argument("--detailed-exitcode", action="store_true",
                        help="exit 0 with no changes, 2 with changes, 1 on error")
    parser.add_argument("--no-color", action="store_true", help="never colour the listing")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    add_shard_option(parser)
    parser.set_defaults(func=run)


def write_atomically(path: str | Path, text: str | Callable[[IO[str]], None]) -> None:
    """Write ``text`` (or what the callable writes into the file) to ``path`` by a temporary
    file in the same folder and a rename: never half a file under that name."""
    target = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if isinstance(text, str):
                handle.write(text)
            else:
                text(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def fail(exc: BaseException | str) -> int:
    """One line on stderr, exit 1 (the KS and secrets were scrubbed by the adapters)."""
    print(f"karchive: error: {exc}", file=sys.stderr)
    return 1


def progress(quiet: bool) -> ProgressSink:
    """The observation's progress on stderr, unless ``--quiet``."""
    return NoProgress() if quiet else Progress("observed")


def run(args: argparse.Namespace) -> int:
    shard = shard_of(args)
    policy = load(args.policy)
    try:
        adapters = compose(policy, metrics=CallCounter(), shard=shard)
        try:
            plan = Pipeline(adapters, progress=progress(args.quiet)).run().plan
        finally:
            adapters.close()
    except KarchiveError as exc:
        return fail(exc)
    if args.out:
        try:
            write_atomically(args.out, plan.write_json)
        except OSError as exc:
            return fail(f"cannot write the plan to {args.out} ({exc.strerror}); "
                        "check the folder exists and is writable")
    if args.json:
        plan.write_json(sys.stdout)
    else:
        color = not args.no_color and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        # The listing ends with the summary line ("Plan: ..." or "No changes."), a line at a
        # time: a big plan is printed as it is read.
        for line in plan.render_lines(color=color):
            sys.stdout.write(line + "\n")
        if args.out:
            sys.stdout.write(f"Saved the plan to {args.out}: apply it with "
                             f"`karchive apply {args.out}`.\n")
    if args.detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES
    return 0
