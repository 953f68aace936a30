"""``karchive apply [-f policy.yaml] [PLAN_FILE]``: the pipeline, then the executor, after a yes.

Without a plan file: plan (``runtime/pipeline.py``: observe → classify → diff), show it, ask "Do
you want to perform these actions?" (only ``yes`` proceeds — or, when the plan deletes entries,
the typed word ``delete`` or the number of entries — unless ``--auto-approve``), then execute it
(``runtime/executor.py``) — after sending the owners' notices the plan lists (its ``✉ notify``
lines: ``runtime/notices.py``). With a plan file (``karchive plan --out FILE``): the saved plan is
applied exactly — only the entries it names are observed again (batched ``idIn``), and an item
whose entry changed since (another fingerprint, or no longer the same action) is refused as
stale and listed; the fresh items still run, and the exit code is 1.

One actor: apply takes the daemon's lease (``adapters/storage/lease.py``) before it observes, or
refuses in one line while a daemon or another apply holds it, and releases it on the way out.
With ``--shard I/N`` it is that shard's lease and only that shard's entries; without, it is the
unsharded lease, refused while shards of any N hold theirs (``adapters/storage/shard_lease.py``).
SIGINT or SIGTERM before anything changed stops at once; once items run, the first one stops at
the next safe point (steps under way finish and are journalled, nothing new starts) and says
so; the exit code is then 128 + the signal's number.

Progress: one line per finished item on stderr, or JSON lines on stdout with
``--json-progress``; items deferred (the cycle's limits, backoff) are summed up at the end, one
line per reason, rather than one line each. The journal (``--journal``, or ``journal/`` in the
state directory: ``--state-dir``, see ``runtime/state.py``) is shipped to the bucket at the end;
entries that keep failing back off (the state store). Exit 0 when everything converged (or
waits on Kaltura/S3), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from controller.adapters.storage.lease import CommandLease
from controller.cli.plan import progress
from controller.cli.policy import add_policy_option, add_shard_option, load, shard_of
from controller.compose import Adapters, compose
from controller.errors import KarchiveError, UsageError
from controller.runtime.executor import Hooks, ItemReport, RunReport, Timing, execute
from controller.runtime.journal import Journal
from controller.runtime.metrics import CallCounter
from controller.runtime.notices import notify, tell_restored
from controller.runtime.pipeline import Pipeline
from controller.runtime.state import (
    StateStore,
    add_state_dir_option,
    journal_location,
    state_dir,
)
from policies.plan import Action, Plan, PlanFormatError, PlanItem, Target, stale_items
from policies.schema import Policy
from policies.shards import Shard

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
    add_shard_option(parser)
    parser.set_defaults(func=run)


def _read_plan(args: argparse.Namespace, policy: Policy, shard: Shard) -> Plan | None:
    """The saved plan named on the command line (None without one), or one line why not
    (another policy's, or naming entries of another shard than ``--shard``'s)."""
    if not args.plan_file:
        return None
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
    foreign = next((i.entry_id for i in saved.items if not shard.owns(i.entry_id)), None)
    if foreign is not None:
        raise UsageError(f"{args.plan_file} names {foreign}, which shard {shard} does not own; "
                         f"plan again with --shard {shard}, or apply without --shard once "
                         "the shards are stopped")
    return saved


def run(args: argparse.Namespace) -> int:
    shard = shard_of(args)
    policy = load(args.policy)
    saved = _read_plan(args, policy, shard)
    out = sys.stderr if args.json_progress else sys.stdout
    stop = _Signals()
    try:
        adapters = compose(policy, metrics=CallCounter(), shard=shard)
        lease = adapters.lease(duration=LEASE_SECONDS)
        with stop, CommandLease(lease, policy.storage.location) as held:
            report, stale, early = _apply(args, adapters, saved, out, stop, held)
            lost = held.lost  # read before the release on the way out makes it so
    except _Interrupted as exc:
        print(f"karchive: stopped by {exc.name} before anything was changed", file=sys.stderr)
        return 128 + exc.signum
    except KarchiveError as exc:
        print(f"karchive: error: {exc}", file=sys.stderr)
        return 1
    if early is not None or report is None:
        return early or 0
    return _finish(report, stale, stop, lost, out)


def _finish(report: RunReport, stale: tuple[PlanItem, ...], stop: _Signals, lost: bool,
            out: TextIO) -> int:
    """The run's last lines, and its exit code."""
    if report.ship_error is not None:
        print(f"karchive: warning: journal not shipped to the archive ({report.ship_error})",
              file=sys.stderr)
    for line in report.deferrals():
        print(line, file=out)
    print(report.summary(), file=out)
    if stale:
        print(f"{len(stale)} stale item(s) refused: run `karchive plan` again.", file=out)
    if stop.name is not None or lost:
        why = f"{stop.name}" if stop.name is not None else "the lease was lost"
        print(f"Stopped by {why} at a safe point: the steps under way finished, nothing new "
              "started; run `karchive apply` again to continue.", file=out)
        return 128 + stop.signum if stop.name is not None else 1
    return 0 if report.ok and not stale else 1


def _plan(args: argparse.Namespace, adapters: Adapters, saved: Plan | None
          ) -> tuple[Plan, tuple[PlanItem, ...]]:
    """A fresh plan of every entry; or a saved plan with its stale items taken out (only the
    entries it names are observed again)."""
    pipeline = Pipeline(adapters, progress=progress(args.quiet))
    if saved is None:
        return pipeline.run().plan, ()
    told = {v.entry_id for v in saved.to_notify}
    ids = sorted({item.entry_id for item in saved.changes} | told)
    fresh = pipeline.run(entry_ids=ids).plan if ids else saved
    stale = stale_items(saved, fresh)
    stale_ids = {(i.entry_id, i.action) for i in stale}
    keep = tuple(i for i in saved.items if (i.entry_id, i.action) not in stale_ids)
    # The saved plan's notices, as they stand now (one already sent is not sent again), and
    # the records of its entries that no longer hold.
    notices = tuple(v for v in fresh.notices if v.entry_id in told or not v.needs_message)
    return Plan(keep, saved.planned_at, saved.observed_count, saved.target,
                notices=notices), stale


def _apply(args: argparse.Namespace, adapters: Adapters, saved: Plan | None, out: TextIO,
           stop: _Signals, held: CommandLease
           ) -> tuple[RunReport | None, tuple[PlanItem, ...], int | None]:
    """Plan (or re-check a saved plan), ask, execute: the run report, the stale items of a
    saved plan, and the exit code when nothing ran (None when the plan was executed)."""
    plan, stale = _plan(args, adapters, saved)
    for item in stale:
        print(f"! stale {item.action.value} {item.entry_id}: the entry changed since the "
              "plan was saved; refused (plan again)", file=out)
    if not plan.has_changes and not plan.to_notify:
        # Records of cancelled notices still go (that only makes a later notice start afresh).
        for line in notify(plan, adapters).lines():
            print(line, file=out)
        print(plan.render() if plan.items else "No changes.", file=out)
        return None, stale, 1 if stale else 0
    print(plan.render(color=_is_terminal(out)), file=out)
    if not args.auto_approve and not _confirmed(out, plan):
        print("Apply cancelled.", file=out)
        return None, stale, 1
    journal = Journal(journal_location(args))
    hooks = Hooks(should_stop=lambda: stop.name is not None or held.lost,
                  on_item=_progress(args.json_progress))
    stop.acting = True  # from here a signal stops at the next safe point
    # The owners' notices first: what they announce runs in a later cycle, never this one.
    for line in notify(plan, adapters).lines():
        print(line, file=out)
    with StateStore.open(state_dir(args.state_dir)) as state:
        report = execute(plan, adapters, journal, backoffs=state.backoffs,
                         timing=Timing(wait_timeout=args.wait), hooks=hooks,
                         restore_via=args.restore_via)
    for line in tell_restored(plan, report, adapters):
        print(line, file=out)
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


def _confirmed(out: TextIO, plan: Plan) -> bool:
    """A yes; for a plan that deletes entries, the typed word ``delete`` or their number."""
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


def _is_terminal(out: TextIO) -> bool:
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


def _progress(as_json: bool) -> Callable[[ItemReport], None]:
    def show(item: ItemReport) -> None:
        if as_json:
            sys.stdout.write(json.dumps(asdict(item)) + "\n")
            sys.stdout.flush()
        elif item.result != "deferred":  # summed up per reason at the end
            tail = f": {item.message}" if item.message else ""
            print(f"{item.action} {item.entry_id}: {item.result}{tail}", file=sys.stderr,
                  flush=True)

    return show
