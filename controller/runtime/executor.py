"""The executor: runs a Plan's items through their reconcilers, safely and in bounded parallel.

``apply`` and the daemon hand it a Plan. Before anything moves, a guard refuses a plan that
looks like a wrong observation (an empty catalogue; more replaces than ``max_replace_share`` of
the entries observed). Then items run on ``limits.concurrency`` workers, with:

- per-cycle limits (``transitions_per_cycle``, ``bytes_per_cycle``): the rest is deferred;
- per-entry exponential backoff, capped, reset on success and kept in the journal so a daemon
  remembers a failing entry across cycles and restarts: an entry still backing off is deferred;
- retries of ``TransientError`` inside a step (capped exponential backoff, full jitter) — Kaltura's
  ACTION_BLOCKED is paced by the session itself, never retried in a tight loop, and a
  ``NetworkError`` was retried by its adapter already, so it fails the item at once;
- a timeout per step: a step that overruns is reported failed and its worker abandoned;
- ``waiting`` outcomes (a replacement Kaltura has not swapped yet) re-queued after their
  ``retry_after`` without holding a worker, until ``wait_timeout``; then reported as waiting;
- a stop check (``should_stop``) before each new step: a daemon shutting down lets in-flight
  steps finish and starts nothing new.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.runtime.journal import Journal
from controller.runtime.logs import for_entry
from policies.errors import KarchiveError, NetworkError, PermanentError, TransientError
from policies.plan import Action, Plan, PlanItem
from policies.schema import Policy
from policies.totals import BYTES_LIMIT, TRANSITIONS_LIMIT, CycleLimits, admit
from reconcilers.base import Context, Outcome, Placeholder, Reconciler, Result, Settings
from reconcilers.ports import NullMetrics
from reconcilers.registry import chain

log = logging.getLogger(__name__)

BACKOFF_BASE = 60.0  # seconds before a failed entry is tried again; doubles per failure
BACKOFF_CAP = 6 * 3600.0


# Why an item is deferred, for the one-line-per-reason report (``RunReport.deferrals``).
DEFER_BACKOFF = "backoff"
DEFER_STOPPING = "stopping"
_DEFER_TEXT = {
    TRANSITIONS_LIMIT: "{n} deferred to later cycles by limits.transitions_per_cycle",
    BYTES_LIMIT: "{n} deferred to later cycles by limits.bytes_per_cycle",
    DEFER_BACKOFF: "{n} deferred: still backing off after earlier failures (see the journal)",
    DEFER_STOPPING: "{n} deferred: karchive was stopping before they started",
}


@dataclass(frozen=True, slots=True)
class ItemReport:
    entry_id: str
    action: str
    result: str  # done | skipped | waiting | failed | deferred | refused
    message: str = ""
    bytes: int = 0
    why: str = ""  # deferred only: a key of _DEFER_TEXT, the same for every item it defers


@dataclass(slots=True)
class RunReport:
    items: list[ItemReport] = field(default_factory=list)
    refused: str | None = None  # the guard's one-line reason

    def count(self, result: str) -> int:
        return sum(1 for item in self.items if item.result == result)

    @property
    def ok(self) -> bool:
        return self.refused is None and not any(
            item.result in ("failed", "refused") for item in self.items)

    def deferrals(self) -> list[str]:
        """One line per reason items were deferred, with how many (none: an empty list)."""
        by_reason = Counter(item.why for item in self.items if item.result == "deferred")
        return [_DEFER_TEXT.get(why, "{n} deferred").format(n=f"{n:,}")
                for why, n in by_reason.items()]

    def summary(self) -> str:
        if self.refused:
            return f"Refused: {self.refused}"
        parts = [f"{self.count(r)} {r}" for r in
                 ("done", "skipped", "waiting", "deferred", "failed", "refused") if self.count(r)]
        return "Apply: " + (", ".join(parts) if parts else "nothing to do") + "."


def guard(plan: Plan, policy: Policy) -> str | None:
    """Why this plan must not run, or None. (Cloud Custodian's safety limit.)"""
    if plan.observed_count == 0 and plan.has_changes:
        return ("the observation found no entries at all; check kaltura.service_url and the "
                "partner before applying")
    # A deletion takes content out of Kaltura as a replace does (and for good): both count.
    replaces, deletes = plan.count(Action.REPLACE), plan.count(Action.DELETE)
    share = policy.limits.max_replace_share
    touched = replaces + deletes
    if plan.observed_count and touched / plan.observed_count > share:
        what = f"replaces {replaces}" + (f" and deletes {deletes}" if deletes else "")
        return (f"the plan {what} of {plan.observed_count} entries "
                f"({touched / plan.observed_count:.0%}), more than limits.max_replace_share "
                f"({share:.0%}); check the observation, or raise the limit in the policy")
    return None


def load_placeholder(policy: Policy, base_dir: Path | None = None) -> Placeholder | None:
    """The placeholder video's bytes (a local file) or its URL and bytes (fetched once)."""
    location = policy.placeholder
    if not location:
        return None
    if "://" in location and not location.startswith("file://"):
        from controller.adapters.kaltura.download import fetch_small

        return Placeholder(location.rsplit("/", 1)[-1] or "placeholder.mp4",
                           fetch_small(location), url=location)
    path = Path(location.removeprefix("file://"))
    if not path.is_absolute() and base_dir is not None and not path.exists():
        path = base_dir / path
    try:
        return Placeholder(path.name, path.read_bytes())
    except OSError as exc:
        raise PermanentError(f"cannot read the placeholder video {str(path)!r} "
                             f"({exc.strerror}); fix `placeholder:` in the policy") from None


def settings_from(policy: Policy, *, restore_via: str = "url") -> Settings:
    storage = policy.storage
    return Settings(
        partner_id=policy.kaltura.partner_id,
        prefix=storage.prefix,
        layout=storage.layout,
        storage_class=storage.storage_class.value,
        part_size=policy.limits.part_size,
        restore_tier=storage.restore.tier.value,
        restore_days=storage.restore.days,
        restore_via=restore_via,
        legacy_placeholder_size=policy.legacy_placeholder_size,
    )


def build_context(
    policy: Policy, session: Any, s3: Any, *, metrics: Any = None, journal: Any = None,
    placeholder: Placeholder | None = None, restore_via: str = "url",
    parallel_parts: int = 4,
) -> Context:
    """The reconcilers' Context over the real adapters. ``s3`` is the storage handle of
    ``controller.adapters.storage.backend.connect`` (a boto3 client, or a directory archive)."""
    from controller.adapters.kaltura.download import HttpSource
    from controller.adapters.kaltura.write import KalturaWriter
    from controller.adapters.storage import backend

    return Context(
        kaltura=KalturaWriter(session),
        archive=backend.archive(policy.storage, s3, parallel_parts=parallel_parts,
                                metrics=metrics),
        source=HttpSource(timeout=policy.kaltura.timeout),
        journal=journal if journal is not None else Journal(),
        settings=settings_from(policy, restore_via=backend.restore_via(policy.storage,
                                                                        restore_via)),
        placeholder=placeholder if placeholder is not None else load_placeholder(policy),
        metrics=metrics if metrics is not None else NullMetrics(),
    )


@dataclass(order=True)
class _Task:
    ready_at: float
    seq: int
    item: PlanItem = field(compare=False)
    index: int = field(compare=False, default=0)  # which reconciler of the chain
    deadline: float = field(compare=False, default=0.0)


class Executor:
    """Runs plan items; one instance per run (or per daemon cycle)."""

    def __init__(
        self,
        ctx: Context,
        policy: Policy,
        *,
        step_timeout: float = 3600.0,
        wait_timeout: float = 600.0,
        attempts: int = 4,
        retry_base: float = 1.0,
        retry_cap: float = 30.0,
        should_stop: Callable[[], bool] = lambda: False,
        on_item: Callable[[ItemReport], None] | None = None,
        clock: Callable[[], float] = time.time,
        chain: Callable[[PlanItem], tuple[Reconciler, ...]] = chain,
    ) -> None:
        self.ctx = ctx
        self.policy = policy
        self.journal = ctx.journal
        self.metrics = ctx.metrics
        self.step_timeout = step_timeout
        self.wait_timeout = wait_timeout
        self.attempts = attempts
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.should_stop = should_stop
        self.on_item = on_item or (lambda report: None)
        self.clock = clock
        self.chain = chain
        self._lock = threading.Lock()

    # -- selection -----------------------------------------------------------------------------

    def select(self, items: Iterable[PlanItem], report: RunReport) -> list[PlanItem]:
        """Items to run now; the rest deferred (backoff, then the cycle's limits, as
        ``policies.totals.admit`` defines them) and reported as such."""
        candidates: list[PlanItem] = []
        now = self.clock()
        for item in items:
            if not self.chain(item):
                self._report(report, ItemReport(
                    item.entry_id, item.action.value, "refused",
                    f"no reconciler for {item.action.value} in this version of karchive"))
                continue
            backoff = self.journal.backoff(item.entry_id)
            if backoff is not None and backoff.until > now:
                self._report(report, ItemReport(
                    item.entry_id, item.action.value, "deferred",
                    f"backing off after {backoff.failures} failures, "
                    f"until {time.strftime('%H:%M:%S', time.gmtime(backoff.until))} UTC",
                    why=DEFER_BACKOFF))
                continue
            candidates.append(item)
        chosen: list[PlanItem] = []
        for item, limit in admit(candidates, CycleLimits.of(self.policy.limits)):
            if limit is None:
                chosen.append(item)
            else:
                self._report(report, ItemReport(item.entry_id, item.action.value, "deferred",
                                                f"{limit} reached", why=limit))
        return chosen

    # -- running -------------------------------------------------------------------------------

    def run(self, plan: Plan, items: Iterable[PlanItem] | None = None) -> RunReport:
        report = RunReport()
        refused = guard(plan, self.policy)
        if refused is not None:
            report.refused = refused
            return report
        todo = self.select(plan.changes if items is None else items, report)
        seq = itertools.count()
        queue: list[_Task] = []
        start = self.clock()
        for item in todo:
            heapq.heappush(queue, _Task(start, next(seq), item, 0, start + self.wait_timeout))
        running: dict[Future[Outcome], tuple[_Task, float]] = {}
        workers = self.policy.limits.concurrency
        pool = ThreadPoolExecutor(workers, thread_name_prefix="apply")
        abandoned = False
        try:
            while queue or running:
                now = self.clock()
                stopping = self.should_stop()
                while queue and not stopping and len(running) < workers \
                        and queue[0].ready_at <= now:
                    task = heapq.heappop(queue)
                    running[pool.submit(self._attempt, task)] = (task, time.monotonic())
                if stopping and not running:
                    for task in queue:
                        self._report(report, ItemReport(task.item.entry_id,
                                                        task.item.action.value, "deferred",
                                                        "stopped before it started",
                                                        why=DEFER_STOPPING))
                    queue.clear()
                    break
                timeout = 0.5
                if queue and not stopping:
                    timeout = max(0.01, min(timeout, queue[0].ready_at - now))
                done, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
                for future in done:
                    task, _started = running.pop(future)
                    follow = self._settle(task, future, report)
                    if follow is not None:
                        heapq.heappush(queue, follow)
                for future, (task, started) in list(running.items()):
                    if time.monotonic() - started > self.step_timeout:
                        running.pop(future)
                        abandoned = True
                        self._failed(task.item, report, PermanentError(
                            f"step timed out after {self.step_timeout:.0f} s"))
        finally:
            # A step that overran its timeout is left to finish (or hang) on its own thread.
            pool.shutdown(wait=not (running or abandoned), cancel_futures=True)
        return report

    def _attempt(self, task: _Task) -> Outcome:
        """One reconciler of the chain, transient failures retried with capped backoff."""
        reconciler = self.chain(task.item)[task.index]
        attempt = 0
        while True:
            attempt += 1
            try:
                return reconciler.run(task.item.entry_id, self.ctx)
            except NetworkError:
                raise  # its adapter retried it already: one retry level, then the backoff
            except TransientError as exc:
                if attempt >= self.attempts or self.should_stop():
                    raise
                ceiling = min(self.retry_cap, self.retry_base * 2 ** (attempt - 1))
                time.sleep(exc.delay if exc.delay is not None else random.uniform(0, ceiling))

    def _settle(self, task: _Task, future: Future[Outcome], report: RunReport) -> _Task | None:
        item = task.item
        try:
            outcome = future.result()
        except KarchiveError as exc:
            self._failed(item, report, exc)
            return None
        except Exception as exc:  # a bug must not take the other items down with it
            self._failed(item, report, PermanentError(f"{type(exc).__name__}: {exc}"))
            return None
        now = self.clock()
        if outcome.result is Result.WAITING:
            if now + (outcome.retry_after or 0) > task.deadline or self.should_stop():
                self._report(report, ItemReport(item.entry_id, item.action.value, "waiting",
                                                outcome.message))
                return None
            return _Task(now + (outcome.retry_after or 1.0), task.seq, item, task.index,
                         task.deadline)
        if task.index + 1 < len(self.chain(item)):
            return _Task(now, task.seq, item, task.index + 1, task.deadline)
        self._succeeded(item, outcome, report)
        return None

    def _succeeded(self, item: PlanItem, outcome: Outcome, report: RunReport) -> None:
        backoff = self.journal.backoff(item.entry_id)
        if backoff is not None:
            self.journal.set_backoff(item.entry_id, 0, 0.0, item.action.value)
        self.metrics.transition(item.action.value, outcome.result.value)
        for_entry(log, item.entry_id, action=item.action.value).info(
            "%s %s%s", item.action.value, outcome.result.value,
            f": {outcome.message}" if outcome.message else "")
        self._report(report, ItemReport(item.entry_id, item.action.value, outcome.result.value,
                                        outcome.message, outcome.bytes))

    def _failed(self, item: PlanItem, report: RunReport, exc: KarchiveError) -> None:
        backoff = self.journal.backoff(item.entry_id)
        failures = (backoff.failures if backoff is not None else 0) + 1
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (failures - 1))
        self.journal.set_backoff(item.entry_id, failures, self.clock() + delay, item.action.value)
        self.metrics.transition(item.action.value, "failed")
        self.metrics.error(type(exc).__name__)
        for_entry(log, item.entry_id, action=item.action.value).warning(
            "%s failed (%d in a row; next try in %.0fs): %s", item.action.value, failures, delay,
            exc)
        self._report(report, ItemReport(item.entry_id, item.action.value, "failed", str(exc)))

    def _report(self, report: RunReport, item: ItemReport) -> None:
        with self._lock:
            report.items.append(item)
        self.on_item(item)


def run_plan(
    plan: Plan,
    policy: Policy,
    *,
    session: Any,
    s3: Any,
    metrics: Any = None,
    should_stop: Callable[[], bool] = lambda: False,
    journal: Journal | None = None,
    on_item: Callable[[ItemReport], None] | None = None,
) -> RunReport:
    """The daemon's entry point: run ``plan``, ship the journal, and say how it went."""
    journal = journal if journal is not None else Journal()
    ctx = build_context(policy, session, s3, metrics=metrics, journal=journal)
    report = Executor(ctx, policy, should_stop=should_stop, on_item=on_item).run(plan)
    # The local journal keeps every line; a failed ship is not a failed cycle.
    with contextlib.suppress(KarchiveError):
        journal.ship(ctx.archive, policy.storage.prefix)
    return report
