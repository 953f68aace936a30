"""``karchive apply [-f policy.yaml] [PLAN_FILE]``: carry out a plan, after a yes.

Without a plan file: observe, diff, show the plan, ask "Do you want to perform these actions?"
(only ``yes`` proceeds — or, when the plan deletes entries, the typed word ``delete`` or the
number of entries — unless ``--auto-approve``), then execute it (``controller/executor.py``).
With a plan file (``karchive plan --out FILE``): the saved plan is applied exactly — only the
entries it names are observed again (batched ``idIn``), and an item whose entry changed since
(another fingerprint, or no longer the same action) is refused as stale and listed; the fresh
items still run, and the exit code is 1.

One actor: apply takes the daemon's lease (``controller/lease.py``) before it observes, or
refuses in one line while a daemon or another apply holds it, and releases it on the way out.
SIGINT or SIGTERM before anything changed stops at once; once items run, the first one stops at
the next safe point (steps under way finish and are journalled, nothing new starts) and says
so; the exit code is then 128 + the signal's number.

Progress: one line per finished item on stderr, or JSON lines on stdout with
``--json-progress``; items deferred (the cycle's limits, backoff) are summed up at the end, one
line per reason, rather than one line each. The journal (``--journal``, or ``journal/`` in the
state directory: ``--state-dir``, see ``controller.runtime.journal``) is shipped to the bucket
at the end. Exit 0 when everything converged (or waits on Kaltura/S3), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from controller.adapters.storage.lease import LEASE_NAME, CommandLease
from controller.cli.policy import add_policy_option, load
from controller.errors import KarchiveError, UsageError
from controller.runtime.executor import Executor, ItemReport, build_context
from controller.runtime.journal import Journal, add_state_dir_option, journal_location
from controller.runtime.progress import NoProgress, Progress

LEASE_SECONDS = 60.0
PROMPT = "Do you want to perform these actions? Only 'yes' will be accepted: "
DELETE_PROMPT = ("This plan DELETES {n} entries from Kaltura. To go on, type 'delete' or the "
                 "number of entries ({n}): ")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("apply", help="carry out the plan (asks first)")
    add_policy_option(parser)
    parser.add_argument("plan_file", nargs="?", metavar="PLAN_FILE",
                        help="a plan saved by `karchive plan --out FILE`, applied exactly")
    parser.add_argument("--auto-approve", action="store_true", help="do not ask for a yes")
    parser.add_argument("--json-progress", action="store_true",
                        help="print one JSON line per finished item on stdout")
    parser.add_argument("--journal", metavar="PATH",
                        help="journal folder or .jsonl file (default: journal/ in the state "
                             "directory)")
    add_state_dir_option(parser)
    parser.add_argument("--restore-via", choices=("url", "upload"), default="url",
                        help="restore by presigned URL Kaltura fetches (default) or by upload")
    parser.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                        help="how long to wait for Kaltura to swap content (default 600)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no observation progress")
    parser.set_defaults(func=run)


def _observe(policy: Any, session: Any, s3: Any, quiet: bool, ids: list[str] | None) -> Any:
    """A fresh plan: of every entry, or (a saved plan's) just ``ids``."""
    from controller.runtime.observe import CallCounter, observe
    from policies.plan import diff

    progress = NoProgress() if quiet else Progress("observed")
    seen = observe(session, s3, policy, progress, counter=CallCounter(), entry_ids=ids)
    return diff(seen.entries, policy, seen.observed_at, seen.placeholder_size)


def run(args: argparse.Namespace) -> int:
    from controller.adapters.kaltura.session import KalturaSession
    from controller.adapters.storage import backend
    from controller.adapters.storage.backend import connect
    from policies.plan import Plan, PlanFormatError, Target

    policy = load(args.policy)
    saved: Plan | None = None
    if args.plan_file:
        try:
            saved = Plan.from_json(Path(args.plan_file).read_bytes().decode("utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot read plan file {args.plan_file} ({exc.strerror}); "
                             "write one with `karchive plan --out FILE`") from None
        except UnicodeDecodeError as exc:
            raise UsageError(f"{args.plan_file}: not a plan file (not UTF-8 text at byte "
                             f"{exc.start}); write one with `karchive plan --out FILE`") from None
        except PlanFormatError as exc:
            raise UsageError(f"{args.plan_file}: {exc}") from None
        if saved.target != Target.of(policy):
            raise UsageError(f"{args.plan_file} was made for {saved.target}, not for this "
                             f"policy's {Target.of(policy)}; plan again with this policy")
    out = sys.stderr if args.json_progress else sys.stdout
    stop = _Signals()
    try:
        metrics = _metrics()
        session = KalturaSession(policy.kaltura, metrics=metrics)
        s3 = connect(policy.storage)
        lease = backend.lease(policy.storage, s3, f"{policy.storage.prefix}{LEASE_NAME}",
                              duration=LEASE_SECONDS)
        with stop, CommandLease(lease, policy.storage.location) as held:
            report, stale, early = _apply(args, policy, saved, session, s3, metrics, out, stop,
                                          held)
            lost = held.lost  # read before the release on the way out makes it so
    except _Interrupted as exc:
        print(f"karchive: stopped by {exc.name} before anything was changed", file=sys.stderr)
        return 128 + exc.signum
    except KarchiveError as exc:
        print(f"karchive: error: {exc}", file=sys.stderr)
        return 1
    if early is not None:
        return early
    for line in report.deferrals():
        print(line, file=out)
    print(report.summary(), file=out)
    if stale:
        print(f"{len(stale)} stale item(s) refused: run `karchive plan` again.", file=out)
    if stop.name is not None or (early is None and lost):
        why = f"{stop.name}" if stop.name is not None else "the lease was lost"
        print(f"Stopped by {why} at a safe point: the steps under way finished, nothing new "
              "started; run `karchive apply` again to continue.", file=out)
        return 128 + stop.signum if stop.name is not None else 1
    return 0 if report.ok and not stale else 1


def _apply(args: argparse.Namespace, policy: Any, saved: Any, session: Any, s3: Any,
           metrics: Any, out: Any, stop: _Signals, held: CommandLease
           ) -> tuple[Any, tuple[Any, ...], int | None]:
    """Plan (or re-check a saved plan), ask, execute: the run report, the stale items of a
    saved plan, and the exit code when nothing ran (None when the plan was executed)."""
    from policies.plan import Plan, stale_items

    stale: tuple[Any, ...] = ()
    if saved is None:
        plan = _observe(policy, session, s3, args.quiet, None)
    else:
        ids = sorted({item.entry_id for item in saved.changes})
        fresh = _observe(policy, session, s3, args.quiet, ids) if ids else saved
        stale = stale_items(saved, fresh)
        stale_ids = {(i.entry_id, i.action) for i in stale}
        keep = tuple(i for i in saved.items if (i.entry_id, i.action) not in stale_ids)
        plan = Plan(keep, saved.planned_at, saved.observed_count, saved.target)
    for item in stale:
        print(f"! stale {item.action.value} {item.entry_id}: the entry changed since the "
              "plan was saved; refused (plan again)", file=out)
    if not plan.has_changes:
        print(plan.render() if plan.items else "No changes.", file=out)
        return None, stale, 1 if stale else 0
    print(plan.render(color=_is_terminal(out)), file=out)
    if not args.auto_approve and not _confirmed(out, plan):
        print("Apply cancelled.", file=out)
        return None, stale, 1
    journal = Journal(journal_location(args))
    ctx = build_context(policy, session, s3, metrics=metrics, journal=journal,
                        restore_via=args.restore_via)
    executor = Executor(ctx, policy, wait_timeout=args.wait,
                        on_item=_progress(args.json_progress),
                        should_stop=lambda: stop.name is not None or held.lost)
    stop.acting = True  # from here a signal stops at the next safe point
    report = executor.run(plan)
    journal.ship_or_warn(ctx.archive, policy.storage.prefix)
    return report, stale, None


class _Interrupted(BaseException):
    """A signal before apply acted; a BaseException, like KeyboardInterrupt, so that no
    ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


class _Signals:
    """SIGINT and SIGTERM while ``apply`` runs. Before it acts, either stops it at once (nothing
    was changed); once it acts, the first one stops it at the next safe point — the steps under
    way finish and are journalled, nothing new starts — and says so; a second SIGINT interrupts."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.signum = 0
        self.acting = False
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.acting:
            raise _Interrupted(signum)
        if self.name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.name, self.signum = signal.Signals(signum).name, signum
        print(f"karchive: {self.name}: stopping at the next safe point (the steps under way "
              "finish, nothing new starts)", file=sys.stderr, flush=True)


def _metrics() -> Any:
    try:
        from controller.runtime.metrics import NullMetrics

        return NullMetrics()
    except ImportError:  # pragma: no cover - the metrics module ships with the controller
        from reconcilers.ports import NullMetrics as Fallback

        return Fallback()


def _confirmed(out: Any, plan: Any) -> bool:
    """A yes; for a plan that deletes entries, the typed word ``delete`` or their number."""
    from policies.plan import Action

    deletes = plan.count(Action.DELETE)
    print(file=out)
    try:
        answer = input(DELETE_PROMPT.format(n=deletes) if deletes else PROMPT).strip()
    except (EOFError, RuntimeError):
        # End of input, or no stdin at all (closed: input() raises RuntimeError): no yes.
        print("\nkarchive: no answer on standard input; type 'yes', or pass --auto-approve",
              file=sys.stderr)
        return False
    if deletes:
        return answer in ("delete", str(deletes))
    return answer == "yes"


def _is_terminal(out: Any) -> bool:
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


def _progress(as_json: bool) -> Any:
    def show(item: ItemReport) -> None:
        if as_json:
            sys.stdout.write(json.dumps(asdict(item)) + "\n")
            sys.stdout.flush()
        elif item.result != "deferred":  # summed up per reason at the end
            tail = f": {item.message}" if item.message else ""
            print(f"{item.action} {item.entry_id}: {item.result}{tail}", file=sys.stderr,
                  flush=True)

    return show
