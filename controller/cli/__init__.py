"""The ``karchive`` command line: argument parsing and dispatch, nothing else.

Each sub-command lives in ``controller/cli/<name>.py`` and exposes
``register(subparsers) -> None``; it sets ``func`` on its parser, a callable taking the parsed
namespace and returning the exit code. The list below is explicit on purpose: no import side
effects decide which commands exist.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from controller.cli import (
    apply,
    export,
    owners,
    permissions,
    plan,
    policy,
    recreate,
    reports,
    run,
    sandbox,
)
from controller.errors import UsageError
from controller.runtime.metrics import version

COMMANDS = (sandbox, policy, plan, apply, run, reports, owners, recreate, export, permissions)


class Parser(argparse.ArgumentParser):
    """argparse with the project's contract for bad input: one line naming the problem and
    where the fix is, exit code 1 (argparse's own is the usage text and exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="karchive",
        description="Declarative archiving of a Kaltura video library to S3 cold storage.",
    )
    parser.add_argument("--version", action="version", version=f"karchive {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # `karchive sandbox ...` hands everything after the word to the sandbox's own parser, its
    # --help included (argparse would take a leading option for one of ours).
    args, rest = parser.parse_known_args(argv)
    if args.command == "sandbox":
        args.rest = [*rest, *args.rest]
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if getattr(args, "quiet", False):
        # --quiet: no progress on stderr, the waits on a silent server included; the error
        # line, if it comes to that, still does.
        logging.getLogger("karchive.network").setLevel(logging.ERROR)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"karchive: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`karchive list | head`): not an error worth a traceback. Point
        # stdout at /dev/null so the interpreter's final flush cannot fail again; 141 is what a
        # shell reports for a process killed by SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141

