"""``karchive run``: the daemon. Parses its flags, sets up logging and signals, runs
:class:`controller.runtime.daemon.Daemon` until SIGTERM/SIGINT, and exits 0 after a clean stop.

Defaults come from the environment where a container needs them changed without a new command
line (the Dockerfile sets ``KARCHIVE_METRICS_ADDRESS=0.0.0.0``): ``KARCHIVE_POLICY``,
``KARCHIVE_METRICS_ADDRESS``, ``KARCHIVE_METRICS_PORT``, ``KARCHIVE_LOG_FORMAT``,
``KARCHIVE_STATE_DIR`` for the journal and the state store (``runtime/state.py``), and the
shard (``--shard``): ``KARCHIVE_SHARD``, or ``KARCHIVE_SHARDS`` with the StatefulSet pod's
ordinal (``policies/shards.py``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from controller.cli.policy import DEFAULT_POLICY, add_shard_option, shard_of
from controller.runtime import logs
from controller.runtime.daemon import Daemon, DaemonSettings
from controller.runtime.state import add_state_dir_option

DEFAULT_PORT = 9464


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    env = os.environ
    parser = sub.add_parser(
        "run", help="run the daemon: reconcile on the policy's schedule, serve /metrics",
        description="Reconcile for ever on the policy's schedule; reload policy.yaml when it "
                    "changes; serve /metrics, /healthz and /readyz; stop cleanly on SIGTERM.",
    )
    parser.add_argument("-f", "--file", dest="policy", metavar="POLICY",
                        default=env.get("KARCHIVE_POLICY", DEFAULT_POLICY),
                        help="the policy file (default: $KARCHIVE_POLICY or %(default)s)")
    parser.add_argument("--plan-only", action="store_true",
                        help="observe, log the diff and export metrics; never write")
    parser.add_argument("--metrics-port", type=_port, metavar="PORT",
                        default=_port(env.get("KARCHIVE_METRICS_PORT", str(DEFAULT_PORT))),
                        help="port of /metrics, /healthz, /readyz (0: any free port; "
                             "default %(default)s)")
    parser.add_argument("--metrics-address", metavar="ADDRESS",
                        default=env.get("KARCHIVE_METRICS_ADDRESS", "127.0.0.1"),
                        help="address to listen on (default %(default)s; 0.0.0.0 in a container)")
    parser.add_argument("--log-format", choices=("human", "json"),
                        default=env.get("KARCHIVE_LOG_FORMAT", "human"),
                        help="log lines for people or JSON for a log pipeline "
                             "(default %(default)s)")
    parser.add_argument("--grace-period", type=_seconds, default=60.0, metavar="SECONDS",
                        help="on SIGTERM, how long in-flight steps get to reach a safe point "
                             "(default %(default)s)")
    parser.add_argument("--interval", type=_seconds, default=None, metavar="SECONDS",
                        help="run a cycle every SECONDS instead of the policy's schedule "
                             "(for demos and tests)")
    parser.add_argument("--lease-duration", type=_seconds, default=60.0, metavar="SECONDS",
                        help="how long the bucket lease lasts without renewal "
                             "(default %(default)s)")
    parser.add_argument("--keep-address", type=_address, metavar="HOST:PORT", default=None,
                        help="serve the owners' keep links (notices.keep) on this address "
                             "(default: off); the links point at notices.keep.base_url")
    add_state_dir_option(parser)
    add_shard_option(parser)
    parser.set_defaults(func=run)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port; use 0-65535")
    return port


def _address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) for a listener of its own."""
    host, colon, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT; give e.g. 0.0.0.0:8480")
    return host, int(port)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("give a positive number of seconds")
    return value


def run(args: argparse.Namespace) -> int:
    shard = shard_of(args)
    scrubber = logs.configure(args.log_format)
    for secret in logs.secrets_from_env(os.environ):
        scrubber.add(secret)
    settings = DaemonSettings(
        policy_path=Path(args.policy),
        plan_only=args.plan_only,
        metrics_address=args.metrics_address,
        metrics_port=args.metrics_port,
        grace_period=args.grace_period,
        interval=args.interval,
        lease_duration=args.lease_duration,
        state_dir=Path(args.state_dir) if args.state_dir else None,
        keep_address=args.keep_address,
        shard=shard,
    )
    daemon = Daemon(settings)

    def stop(signum: int, _frame: FrameType | None) -> None:
        daemon.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return daemon.run()
    except OSError as exc:  # the metrics port is taken, most often
        print(f"karchive: error: cannot serve metrics on {args.metrics_address}:"
              f"{args.metrics_port} ({exc.strerror}); choose another --metrics-port",
              file=sys.stderr)
        return 1
