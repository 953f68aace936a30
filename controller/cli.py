"""The ``karchive`` command line: argument parsing and dispatch, nothing else.

Each sub-command lives in ``controller/commands/<name>.py`` and exposes
``register(subparsers) -> None``; it sets ``func`` on its parser, a callable taking the parsed
namespace and returning the exit code. The list below is explicit on purpose: no import side
effects decide which commands exist.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from controller.errors import UsageError


def _commands() -> list:  # type: ignore[type-arg]
    # Imported here so `karchive --help` stays fast and a broken optional command names itself.
    from controller.commands import (
        apply,
        export,
        owners,
        plan,
        policy,
        recreate,
        reports,
        run,
        sandbox,
    )

    return [sandbox, policy, plan, apply, run, reports, owners, recreate, export]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="karchive",
        description="Declarative archiving of a Kaltura video library to S3 cold storage.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _commands():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
