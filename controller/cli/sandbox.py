"""``karchive sandbox …``: hands its arguments to the sandbox's own command line.

The sandbox depends on no karchive layer; this command only forwards to ``sandbox.cli.main``.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "sandbox",
        help="run the local Kaltura emulator and S3 (up, play, ...)",
        add_help=False,
    )
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from sandbox import cli

    return int(cli.main(args.rest) or 0)
