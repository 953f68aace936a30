"""``karchive sandbox …``: the local Kaltura emulator and S3, when the sandbox is installed.

The sandbox is an optional extra (``pip install 'karchive[sandbox]'``: the emulator and moto's
S3 server); the daemon and its image never carry it, and no module of karchive imports it. This
command finds it as a plugin — the ``sandbox`` entry point of the ``karchive.plugins`` group —
and hands it everything after the word, ``--help`` included. When the plugin cannot be loaded
(the extra is not installed), it says so in one line, exit 1.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from controller.errors import UsageError

GROUP = "karchive.plugins"
MISSING = ("the sandbox is not installed; install it with pip install 'karchive[sandbox]' "
           "(the Kaltura emulator and a local S3)")

Main = Callable[[Sequence[str]], int | None]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "sandbox",
        help="run the local Kaltura emulator and S3 (up, play, ...; needs karchive[sandbox])",
        add_help=False,
    )
    parser.add_argument("rest", nargs=argparse.REMAINDER)
    parser.set_defaults(func=_run)


def find() -> Main | None:
    """The sandbox's command line, or None when the extra is not installed."""
    for point in entry_points(group=GROUP, name="sandbox"):
        try:
            found: Main = point.load()
        except ImportError:
            return None  # the sandbox's package, or moto, is not installed
        return found
    return None


def _run(args: argparse.Namespace) -> int:
    main = find()
    if main is None:
        raise UsageError(MISSING)
    return int(main(args.rest) or 0)
