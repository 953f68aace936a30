"""The executor, the act stage of the pipeline: a Plan's items through their reconcilers.

``apply`` and the daemon hand it the plan ``runtime/pipeline.py`` made; ``recreate`` hands it one
request. Before anything moves, a guard refuses a plan that looks like a wrong observation (an
empty catalogue; more replaces than ``max_replace_share`` of the entries observed). Then items
run on ``limits.concurrency`` workers, each through the reconcilers it names
(``reconcilers.registry.chain``), with:

- per-cycle limits (``transitions_per_cycle``, ``bytes_per_cycle``): the rest is deferred;
- per-entry exponential backoff, capped, reset on success and kept in the state store
  (``runtime/state.py``) so a daemon remembers a failing entry across cycles and restarts: an
  entry still backing off is deferred;
- retries of a ``TransientError`` karchive itself met inside a step (capped exponential
  backoff, full jitter). An error an adapter raised has been through that adapter's one retry
  level already (``controller.errors.retried``: it names its source): it fails the item at
  once, and the entry backs off — one level of retries, never a product of levels;
- a timeout per step: a step that overruns is reported failed and its worker abandoned;
- ``waiting`` outcomes (a replacement Kaltura has not swapped yet, a thaw) re-queued after their
  ``retry_after`` without holding a worker, until ``wait_timeout`` (or until ``on_wait`` says
  stop); then reported as waiting;
- a stop check (``should_stop``) before each new step: a daemon shutting down lets in-flight
  steps finish and starts nothing new.

What happened is recorded as it happens: every step in the journal (``Context.step``), every
result in the metrics (``transitions_total``) and in the run's :class:`RunReport`.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Protocol

from controller.compose import Adapters
from controller.errors import KarchiveError, PermanentError, TransientError, retried
from controller.runtime.journal import Journal
from controller.runtime.logs import for_entry
from controller.runtime.state import Backoffs
from policies.plan import Action, Plan
from policies.schema import Policy
from policies.totals import BYTES_LIMIT, TRANSITIONS_LIMIT, CycleLimits, admit
from reconcilers.base import Context, Outcome, Reconciler, Result
from reconcilers.registry import chain as registry_chain

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
    # Items the cycle's limits deferred, counted by limit and not kept: on a first cycle over a
    # big catalogue they are most of the plan (the on_item hook still hears each one).
    over_limits: Counter[str] = field(default_factory=Counter)
    refused: str | None = None  # the guard's one-line reason
    shipped: str | None = None  # the key the journal was shipped to (None: nothing shipped)
    ship_error: str | None = None  # why the journal could not be shipped (the run went on)

    def count(self, result: str) -> int:
        kept = sum(1 for item in self.items if item.result == result)
        return kept + (self.over_limits.total() if result == "deferred" else 0)

    @property
    def ok(self) -> bool:
        return self.refused is None and not any(
            item.result in ("failed", "refused") for item in self.items)

    def deferrals(self) -> list[str]:
        """One line per reason items were deferred, with how many (none: an empty list)."""
        by_reason = Counter(item.why for item in self.items if item.result == "deferred")
        by_reason.update(self.over_limits)
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


class Work(Protocol):
    """What the executor runs: a plan's item, or one request (``recreate``)."""

    @property
    def entry_id(self) -> str: ...

    @property
    def action(self) -> str: ...

    @property
    def reconcilers(self) -> tuple[str, ...]: ...

    @property
    def bytes(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Request:
    """One entry through named reconcilers, outside any plan (``karchive recreate``)."""

    entry_id: str
    action: str
    reconcilers: tuple[str, ...]
    bytes: int = 0


def _never() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Timing:
    """How long the executor waits, and how it retries what karchive itself met."""

    step_timeout: float = 3600.0  # one reconciler's run; longer is a hung step
    wait_timeout: float = 600.0  # how long an item may keep waiting (a swap, a thaw)
    attempts: int = 4  # tries of a transient condition a reconciler found itself
    retry_base: float = 1.0
    retry_cap: float = 30.0


@dataclass(frozen=True, slots=True)
class Hooks:
    """What the executor tells its caller, and asks it."""

    should_stop: Callable[[], bool] = _never  # checked before each new step
    on_item: Callable[[ItemReport], None] | None = None  # each item's final report
    # Each time an item waits: True to keep waiting (up to wait_timeout), False to report it
    # waiting now (recreate without --wait, on a thaw).
    on_wait: Callable[[Work, Outcome], bool] | None = None
    log_results: bool = True  # one log line per item (the daemon; a command prints its own)


Chain = Callable[[Work], tuple[Reconciler, ...]]


@dataclass(order=True)
class _Task:
    ready_at: float
    seq: int
    item: Work = field(compare=False)
    index: int = field(compare=False, default=0)  # which reconciler of the chain
    deadline: float = field(compare=False, default=0.0)


class Executor:
    """Runs work items; one instance per run (or per daemon cycle). ``backoffs`` None: no
    memory of failures (a one-off request)."""

    def __init__(self, ctx: Context, policy: Policy, *, backoffs: Backoffs | None = None,
                 timing: Timing = Timing(), hooks: Hooks = Hooks(),  # noqa: B008 — frozen
                 chain: Chain = registry_chain, clock: Callable[[], float] = time.time) -> None:
        self.ctx = ctx
        self.policy = policy
        self.backoffs = backoffs
        self.metrics = ctx.metrics
        self.timing = timing
        self.hooks = hooks
        self.chain = chain
        self.clock = clock
        self._lock = threading.Lock()

    # -- selection -----------------------------------------------------------------------------

    def select(self, items: Iterable[Work], report: RunReport) -> list[Work]:
        """Items to run now; the rest deferred (backoff, then the cycle's limits, as
        ``policies.totals.admit`` defines them) and reported as such."""
        chosen: list[Work] = []
        for item, limit in admit(self._candidates(items, report),
                                 CycleLimits.of(self.policy.limits)):
            if limit is None:
                chosen.append(item)
            else:
                self._report(report, ItemReport(item.entry_id, item.action, "deferred",
                                                f"{limit} reached", why=limit))
        return chosen

    def _candidates(self, items: Iterable[Work], report: RunReport) -> Iterator[Work]:
        """The items that may run, as they are read; the others reported (refused: no
        reconciler; deferred: still backing off)."""
        now = self.clock()
        for item in items:
            if not self.chain(item):
                self._report(report, ItemReport(
                    item.entry_id, item.action, "refused",
                    f"no reconciler for {item.action} in this version of karchive"))
                continue
            backoff = self.backoffs.get(item.entry_id) if self.backoffs is not None else None
            if backoff is not None and backoff.until > now:
                self._report(report, ItemReport(
                    item.entry_id, item.action, "deferred",
                    f"backing off after {backoff.failures} failures, "
                    f"until {time.strftime('%H:%M:%S', time.gmtime(backoff.until))} UTC",
                    why=DEFER_BACKOFF))
                continue
            yield item

    # -- running -------------------------------------------------------------------------------

    def run(self, plan: Plan) -> RunReport:
        """The plan's changes, unless the guard refuses the plan."""
        refused = guard(plan, self.policy)
        if refused is not None:
            return RunReport(refused=refused)
        return self.run_items(plan.changes)

    def run_items(self, items: Iterable[Work]) -> RunReport:
        report = RunReport()
        todo = self.select(items, report)
        seq = itertools.count()
        start = self.clock()
        queue = [_Task(start, next(seq), item, 0, start + self.timing.wait_timeout)
                 for item in todo]
        heapq.heapify(queue)
        running: dict[Future[Outcome], tuple[_Task, float]] = {}
        pool = ThreadPoolExecutor(self.policy.limits.concurrency, thread_name_prefix="apply")
        abandoned = False
        try:
            while queue or running:
                stopping = self.hooks.should_stop()
                self._start_ready(queue, running, pool, stopping)
                if stopping and not running:
                    self._defer_all(queue, report)
                    break
                self._collect(queue, running, report, stopping)
                abandoned = self._abandon_overdue(running, report) or abandoned
        finally:
            # A step that overran its timeout is left to finish (or hang) on its own thread.
            pool.shutdown(wait=not (running or abandoned), cancel_futures=True)
        return report

    def _start_ready(self, queue: list[_Task], running: dict[Future[Outcome], tuple[_Task, float]],
                     pool: ThreadPoolExecutor, stopping: bool) -> None:
        now = self.clock()
        while queue and not stopping and len(running) < self.policy.limits.concurrency \
                and queue[0].ready_at <= now:
            task = heapq.heappop(queue)
            running[pool.submit(self._attempt, task)] = (task, time.monotonic())

    def _defer_all(self, queue: list[_Task], report: RunReport) -> None:
        for task in queue:
            self._report(report, ItemReport(task.item.entry_id, task.item.action, "deferred",
                                            "stopped before it started", why=DEFER_STOPPING))
        queue.clear()

    def _collect(self, queue: list[_Task], running: dict[Future[Outcome], tuple[_Task, float]],
                 report: RunReport, stopping: bool) -> None:
        """Wait a little for a running step; settle the ones that finished."""
        timeout = 0.5
        if queue and not stopping:
            timeout = max(0.01, min(timeout, queue[0].ready_at - self.clock()))
        done, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            task, _started = running.pop(future)
            follow = self._settle(task, future, report)
            if follow is not None:
                heapq.heappush(queue, follow)

    def _abandon_overdue(self, running: dict[Future[Outcome], tuple[_Task, float]],
                         report: RunReport) -> bool:
        abandoned = False
        for future, (task, started) in list(running.items()):
            if time.monotonic() - started > self.timing.step_timeout:
                running.pop(future)
                abandoned = True
                self._failed(task.item, report, PermanentError(
                    f"step timed out after {self.timing.step_timeout:.0f} s"))
        return abandoned

    def _attempt(self, task: _Task) -> Outcome:
        """One reconciler of the chain; a transient condition karchive met itself is retried
        with capped backoff, one an adapter raised (already retried there) is not."""
        reconciler = self.chain(task.item)[task.index]
        timing = self.timing
        attempt = 0
        while True:
            attempt += 1
            try:
                return reconciler.run(task.item.entry_id, self.ctx)
            except TransientError as exc:
                if retried(exc) or attempt >= timing.attempts or self.hooks.should_stop():
                    raise
                ceiling = min(timing.retry_cap, timing.retry_base * 2 ** (attempt - 1))
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
            keep = self.hooks.on_wait(item, outcome) if self.hooks.on_wait else True
            if not keep or now + (outcome.retry_after or 0) > task.deadline \
                    or self.hooks.should_stop():
                self._report(report, ItemReport(item.entry_id, item.action, "waiting",
                                                outcome.message))
                return None
            return _Task(now + (outcome.retry_after or 1.0), task.seq, item, task.index,
                         task.deadline)
        if task.index + 1 < len(self.chain(item)):
            return _Task(now, task.seq, item, task.index + 1, task.deadline)
        self._succeeded(item, outcome, report)
        return None

    def _succeeded(self, item: Work, outcome: Outcome, report: RunReport) -> None:
        if self.backoffs is not None and self.backoffs.get(item.entry_id) is not None:
            self.backoffs.set(item.entry_id, 0, 0.0, item.action)
        self.metrics.transition(item.action, outcome.result.value)
        if self.hooks.log_results:
            for_entry(log, item.entry_id, action=item.action).info(
                "%s %s%s", item.action, outcome.result.value,
                f": {outcome.message}" if outcome.message else "")
        self._report(report, ItemReport(item.entry_id, item.action, outcome.result.value,
                                        outcome.message, outcome.bytes))

    def _failed(self, item: Work, report: RunReport, exc: KarchiveError) -> None:
        backoff = self.backoffs.get(item.entry_id) if self.backoffs is not None else None
        failures = (backoff.failures if backoff is not None else 0) + 1
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (failures - 1))
        if self.backoffs is not None:
            self.backoffs.set(item.entry_id, failures, self.clock() + delay, item.action)
        self.metrics.transition(item.action, "failed")
        self.metrics.error(type(exc).__name__)
        if self.hooks.log_results:
            for_entry(log, item.entry_id, action=item.action).warning(
                "%s failed (%d in a row; next try in %.0fs): %s", item.action, failures, delay,
                exc)
        self._report(report, ItemReport(item.entry_id, item.action, "failed", str(exc)))

    def _report(self, report: RunReport, item: ItemReport) -> None:
        with self._lock:
            if item.why in (TRANSITIONS_LIMIT, BYTES_LIMIT):
                report.over_limits[item.why] += 1
            else:
                report.items.append(item)
        if self.hooks.on_item is not None:
            self.hooks.on_item(item)


def execute(plan: Plan, adapters: Adapters, journal: Journal, *, backoffs: Backoffs | None,
            timing: Timing = Timing(), hooks: Hooks = Hooks(),  # noqa: B008 — frozen values
            restore_via: str = "url") -> RunReport:
    """What ``apply`` and the daemon run: the plan through the reconcilers over ``adapters``,
    then this run's journal shipped to the archive (a failed ship is said in the report, and
    is no failed run: the local journal keeps every line)."""
    ctx = adapters.context(journal, restore_via=restore_via)
    report = Executor(ctx, adapters.policy, backoffs=backoffs, timing=timing,
                      hooks=hooks).run(plan)
    ship(journal, ctx, report)
    return report


def ship(journal: Journal, ctx: Context, report: RunReport) -> None:
    """Ship this run's journal lines to the archive, into ``report``."""
    try:
        report.shipped = journal.ship(ctx.archive, ctx.settings.prefix)
    except KarchiveError as exc:
        report.ship_error = str(exc)
