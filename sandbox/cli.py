"""``karchive sandbox …``: run the local Kaltura emulator and S3, and poke a running one.

    up [--entries N] [--seed S] [--restore-delay SECONDS] [--state FILE] [--port P]
       [--s3-port P] [--conversion-delay S] [--approval] [--max-size BYTES]
       [--mail-dir DIR] [--smtp-port P]
        Start the servers (Kaltura, S3, and an SMTP sink that writes each message it accepts
        into DIR as an .eml file) with a seeded catalogue, print ``export KEY='value'`` lines
        (the variables karchive and policy.yaml read, shell-quoted, so the output can be eval'ed
        or saved and sourced) once all answer, serve until SIGINT/SIGTERM, exit 0.
    play ENTRY_ID             record a play, as a viewer of the entry would (finds the sandbox
                              through KALTURA_SERVICE_URL)
    fault SERVICE.ACTION KIND [--count N] [--code C] [--message M] [--seconds S] [--after-bytes B]
    fault --clear             inject (or clear) faults: api_error, http_500, empty, delay, cut
    throttle [SERVICE.ACTION COUNT WINDOW]   show, or set, a rate limit (ACTION_BLOCKED past it)
    clock SECONDS             move the emulator's clock forward (conversions, KS expiry)
    user ID [--email E] [--first-name F] [--last-name L] [--status active|blocked|deleted]
                              add a user, or change the fields given (an owner's address, say)

Everything but ``up`` talks to the running sandbox's admin endpoints over HTTP only.
Exit codes: 0 done, 1 the sandbox refused or could not be reached, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

FAULT_KINDS = ("api_error", "http_500", "empty", "delay", "cut")
USER_STATUSES = {"blocked": 0, "active": 1, "deleted": 2}  # KalturaUserStatus


class CliError(Exception):
    """A one-line message for the user; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CliError as err:
        print(f"karchive sandbox: {err}", file=sys.stderr)
        return err.code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="karchive sandbox", description="The local Kaltura emulator and S3 for karchive."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the sandbox and serve until interrupted")
    up.add_argument("--entries", type=int, default=2000, help="catalogue size (default 2000)")
    up.add_argument("--seed", type=int, default=1, help="catalogue seed (default 1)")
    up.add_argument(
        "--restore-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="how long a Glacier restore takes (default 0: at once)",
    )
    up.add_argument(
        "--state", metavar="FILE", help="load state from FILE if it exists; save it there on exit"
    )
    up.add_argument("--port", type=int, default=0, help="Kaltura port (default: any free)")
    up.add_argument("--s3-port", type=int, default=0, help="S3 port (default: any free)")
    up.add_argument(
        "--conversion-delay",
        type=float,
        metavar="SECONDS",
        help="how long new content takes to become READY flavors (default 2)",
    )
    up.add_argument(
        "--approval", action="store_true", help="replacements wait for media.approveReplace"
    )
    up.add_argument(
        "--max-size",
        type=int,
        metavar="BYTES",
        help="cap every generated video (quicker archiving in demos)",
    )
    up.add_argument("--mail-dir", metavar="DIR",
                    help="where the SMTP sink keeps the mail it accepts (default: a temporary "
                         "folder, removed on exit)")
    up.add_argument("--smtp-port", type=int, default=0, help="SMTP port (default: any free)")
    up.set_defaults(run=_up)

    play = commands.add_parser("play", help="record a play of an entry")
    play.add_argument("entry_id")
    play.set_defaults(run=_play)

    fault = commands.add_parser("fault", help="inject a fault into the next calls")
    fault.add_argument(
        "target",
        nargs="?",
        metavar="SERVICE.ACTION",
        help="e.g. media.list, or download.flavor for a cut-off download",
    )
    fault.add_argument("kind", nargs="?", choices=FAULT_KINDS)
    fault.add_argument("--count", type=int, default=1)
    fault.add_argument("--code")
    fault.add_argument("--message")
    fault.add_argument("--seconds", type=float)
    fault.add_argument("--after-bytes", type=int)
    fault.add_argument("--clear", action="store_true", help="drop every pending fault")
    fault.set_defaults(run=_fault)

    throttle = commands.add_parser("throttle", help="show or set a rate limit")
    throttle.add_argument("target", nargs="?", metavar="SERVICE.ACTION")
    throttle.add_argument("count", nargs="?", type=int)
    throttle.add_argument("window", nargs="?", type=float, help="seconds (default 10)")
    throttle.set_defaults(run=_throttle)

    clock = commands.add_parser("clock", help="move the emulator's clock forward")
    clock.add_argument("seconds", type=float)
    clock.set_defaults(run=_clock)

    user = commands.add_parser("user", help="add a user or change one (names, address, status)")
    user.add_argument("user_id", metavar="ID")
    user.add_argument("--email", help='the address ("" for none)')
    user.add_argument("--first-name")
    user.add_argument("--last-name")
    user.add_argument("--status", choices=tuple(USER_STATUSES))
    user.set_defaults(run=_user)
    return parser


# ------------------------------------------------------------------------------------- up


def _up(args: argparse.Namespace) -> int:
    from sandbox.runner import Sandbox, shell_exports  # here: the others need no moto/models

    stopping = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stopping.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    sandbox = Sandbox(
        entries=args.entries,
        seed=args.seed,
        restore_delay=args.restore_delay,
        state_file=args.state,
        port=args.port,
        s3_port=args.s3_port,
        conversion_delay=args.conversion_delay,
        approval=args.approval,
        max_size=args.max_size,
        mail_dir=args.mail_dir,
        smtp_port=args.smtp_port,
    )
    try:
        try:
            sandbox.start()
        except (ValueError, KeyError) as exc:  # a state file that is not a sandbox snapshot
            raise CliError(
                f"cannot load the sandbox state from {args.state} ({exc!r}): "
                "delete it to start from a fresh catalogue"
            ) from exc
        except OSError as exc:
            raise CliError(
                f"cannot start the sandbox: {exc}; choose other --port/--s3-port/--smtp-port"
            ) from exc
        try:
            sys.stdout.write(shell_exports(sandbox.env()))
            sys.stdout.flush()
            summary = sandbox.summary
            what = f"{summary.entries} entries, seed {summary.seed}" if summary else args.state
            print(f"sandbox ready ({what}); Ctrl-C to stop", file=sys.stderr, flush=True)
            while not stopping.wait(0.5):
                pass
        finally:
            sandbox.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


# ------------------------------------------------------------------------------------- admin


def _play(args: argparse.Namespace) -> int:
    result = _admin("POST", "play", {"entryId": args.entry_id})
    played = result.get("lastPlayedAt")
    when = datetime.fromtimestamp(played, UTC).isoformat() if played else "never"
    print(
        f"{result['entryId']}: plays={result['plays']} views={result['views']} "
        f"lastPlayedAt={played} ({when})"
    )
    return 0


def _fault(args: argparse.Namespace) -> int:
    if args.clear:
        _admin("DELETE", "faults", {})
        print("faults cleared")
        return 0
    if not args.target or not args.kind:
        raise CliError("fault needs SERVICE.ACTION and KIND (or --clear)", 2)
    service, action = _split_target(args.target)
    spec: dict[str, Any] = {
        "service": service,
        "action": action,
        "kind": args.kind,
        "count": args.count,
    }
    for name in ("code", "message", "seconds", "after_bytes"):
        if getattr(args, name) is not None:
            spec[name] = getattr(args, name)
    result = _admin("POST", "faults", spec)
    print(
        f"fault queued: next {args.count} {args.target} -> {args.kind}; "
        f"pending: {json.dumps(result.get('pending'))}"
    )
    return 0


def _throttle(args: argparse.Namespace) -> int:
    if args.target is None:
        limits = _admin("GET", "throttle", None)
    else:
        if args.count is None:
            raise CliError("throttle needs SERVICE.ACTION COUNT [WINDOW]", 2)
        _split_target(args.target)
        window = 10.0 if args.window is None else args.window
        limits = _admin("POST", "throttle", {args.target: [args.count, window]})
    for key, (count, window) in sorted(limits.items()):
        print(f"{key}\t{count:g} per {window:g} s")
    return 0


def _clock(args: argparse.Namespace) -> int:
    result = _admin("POST", "clock", {"advance": args.seconds})
    print(f"clock now {datetime.fromtimestamp(result['now'], UTC).isoformat()}")
    return 0


def _user(args: argparse.Namespace) -> int:
    spec: dict[str, Any] = {"id": args.user_id}
    for option, field in (("email", "email"), ("first_name", "firstName"),
                          ("last_name", "lastName")):
        if getattr(args, option) is not None:
            spec[field] = getattr(args, option)
    if args.status is not None:
        spec["status"] = USER_STATUSES[args.status]
    user = _admin("POST", "users", spec)["users"][0]
    status = {v: k for k, v in USER_STATUSES.items()}.get(user.get("status"), user.get("status"))
    print(f"{user['id']}: {user.get('fullName', '')} <{user.get('email', '')}> {status}")
    return 0


def _split_target(target: str) -> tuple[str, str]:
    service, dot, action = target.partition(".")
    if not dot or not service or not action:
        raise CliError(f"{target!r} is not SERVICE.ACTION (for example media.delete)", 2)
    return service, action


def _admin(method: str, name: str, body: dict[str, Any] | None) -> Any:
    base = os.environ.get("KALTURA_SERVICE_URL", "").rstrip("/")
    if not base:
        raise CliError(
            "KALTURA_SERVICE_URL is not set: export the variables `karchive sandbox up` prints", 2
        )
    request = urllib.request.Request(
        f"{base}/admin/{name}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("error", exc.reason)
        except (ValueError, AttributeError):
            detail = exc.reason
        raise CliError(f"the sandbox at {base} refused {name}: {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(
            f"cannot reach the sandbox at {base} ({reason}): is `karchive sandbox up` running?"
        ) from exc
