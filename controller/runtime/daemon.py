"""The daemon behind ``karchive run``: the pipeline, for ever, on the policy's schedule.

One cycle is the whole pipeline (``runtime/pipeline.py``), with the daemon's duties around it:

    reload policy.yaml if it changed  (runtime/reload.py: invalid → one line, counted, the last
                                       good one kept)
    → the adapters for it              (controller/compose.py, rebuilt when its connection
                                       settings change)
    → suspend?   (paused gauge: observe and report, change nothing)
    → the lease  (standby when another daemon holds it: observe and report, change nothing)
    → observe → classify → diff        (Pipeline.run; each assessment also feeds the thaw clock,
                                       runtime/thaws.py)
    → export metrics (the plan's census, pending changes)
    → send the owners' notices (runtime/notices.py: one message per owner, recorded once the
      mail server accepted it), then execute the plan (runtime/executor.py) — unless
      plan-only, paused or standby.

APScheduler fires the cycle on the policy's ``schedule`` (``runtime/schedule.py``), with a
faster restore check (``runtime/watch.py``: the placeholders played since the last check and the
thaws and restores in flight, observed by id, through the same pipeline and executor), the lease
renewal (so a long copy never outlives the lease) and a heartbeat for ``/healthz``
(``runtime/http.py``). With ``--keep-address`` the owners' keep links are served beside it
(``runtime/keep.py``, on a listener of its own). Cycles never overlap: ``max_instances=1`` and
``coalesce`` on the job, and a lock shared by the cycle and the restore check. SIGTERM/SIGINT set
the stop event: scheduling stops, the executor reaches a safe point (it checks the same event)
within the grace period, the lease is released, and the process exits 0. When a cycle fails, the
system to blame is the error's ``source`` (``controller/errors.py``), never a guess from its
words.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from controller.adapters.kaltura.write import KalturaWriter
from controller.adapters.storage.lease import LeasePort
from controller.compose import Adapters, compose
from controller.errors import KarchiveError, Source, UsageError
from controller.runtime import schedule
from controller.runtime.executor import Hooks, ItemReport, RunReport, execute, guard
from controller.runtime.http import Checks, MetricsServer
from controller.runtime.index import Informer, Observed
from controller.runtime.journal import Journal
from controller.runtime.keep import Keeper, KeepServer
from controller.runtime.metrics import CallCounter, Metrics
from controller.runtime.notices import NoticeStore, notify, tell_restored
from controller.runtime.pipeline import Pipeline
from controller.runtime.reload import PolicySource
from controller.runtime.state import JOURNAL_DIR, StateStore, ensure_dir, state_dir
from controller.runtime.thaws import ThawClock
from controller.runtime.watch import Checked, Watch
from policies.plan import Action, Plan
from policies.schema import Policy
from policies.shards import WHOLE, Shard

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
__all__ = ["Daemon", "DaemonSettings", "PolicySource"]


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """Everything ``karchive run`` was told on its command line."""

    policy_path: Path
    plan_only: bool = False
    metrics_address: str = "127.0.0.1"
    metrics_port: int = 9464
    grace_period: float = 60.0  # seconds in-flight steps get to reach a safe point on SIGTERM
    interval: float | None = None  # overrides the policy's schedule (demos, tests)
    lease_duration: float = 60.0
    heartbeat: float = HEARTBEAT_SECONDS
    state_dir: Path | None = None  # the journal's and the state store's home (runtime/state.py)
    keep_address: tuple[str, int] | None = None  # the keep links' listener (off: None)
    shard: Shard = WHOLE  # the entries this daemon serves, on its share of the budgets


@dataclass(slots=True)
class _Status:
    """What the probes read; written only by the cycle thread."""

    started: float = field(default_factory=time.monotonic)
    last_tick: float = field(default_factory=time.monotonic)
    cycle_started: float | None = None  # monotonic, while a cycle runs
    cycles: int = 0
    observed: bool = False
    kaltura: str = "not asked yet"
    s3: str = "not asked yet"
    in_flight: int = 0  # thaws and restores the last plan was waiting on or doing


class Daemon:
    """``Daemon(settings).run()`` until SIGTERM; tests call :meth:`cycle` and the probes."""

    def __init__(self, settings: DaemonSettings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.metrics.plan_only(settings.plan_only)
        self.metrics.shard(settings.shard.label)
        self.source = PolicySource(settings.policy_path, self.metrics)
        self.stop_event = threading.Event()
        self.status = _Status()
        self._cycle_lock = threading.Lock()
        self._policy_key: tuple[Any, ...] | None = None  # what the adapters were made for
        self._adapters: Adapters | None = None
        self._lease: LeasePort | None = None
        self._state: StateStore | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._schedule_key: tuple[Any, ...] | None = None
        self._last_shape = ""  # the plan-only daemon's last diff, as a digest (_shape)
        self._thaws = ThawClock(self.metrics.restore_wait)
        self._watch = Watch(lambda: self._store().watch_mark)
        self._informer = Informer(self._state_dir())

    # -- the probes -----------------------------------------------------------------------------
    def liveness(self) -> tuple[bool, Checks]:
        """Fresh heartbeat, and no cycle stuck beyond its budget."""
        now = time.monotonic()
        age = now - self.status.last_tick
        ok = age <= 3 * self.settings.heartbeat + 1
        checks: Checks = {"heartbeat_age_seconds": round(age, 3)}
        if self.status.cycle_started is not None:
            running = now - self.status.cycle_started
            checks["cycle_running_seconds"] = round(running, 3)
            ok = ok and running <= self._stall_after()
        return ok, checks

    def readiness(self) -> tuple[bool, Checks]:
        checks: Checks = {
            "policy": "loaded" if self.source.policy is not None else (self.source.error
                                                                        or "not loaded"),
            "kaltura": self.status.kaltura,
            "s3": self.status.s3,
            "first_observation": self.status.observed,
        }
        if self.source.error and self.source.policy is not None:
            checks["policy_edit_rejected"] = self.source.error
        ok = (self.source.policy is not None and self.status.kaltura == "ok"
              and self.status.s3 == "ok" and self.status.observed)
        return ok, checks

    def _stall_after(self) -> float:
        # A cycle may copy for hours; longer than three intervals (and six hours) is a stall.
        return max(3 * self._interval_seconds(), 6 * 3600.0)

    # -- the cycle ------------------------------------------------------------------------------
    def cycle(self, reason: str = "schedule") -> bool:
        """One reconciliation. Returns False when failed (or when the restore check holding
        the lock outlasted the stall budget)."""
        # A cycle waits for a restore check to end (checks are short and frequent: skipping
        # would let them starve the cycle); the scheduler never starts a cycle beside a cycle.
        return self._exclusive(reason, self._cycle, self._cycle_ended, wait=self._stall_after())

    def _cycle_ended(self, seconds: float, ok: bool) -> None:
        self.metrics.cycle(seconds, ok)
        self.status.cycles += 1

    def _exclusive(self, reason: str, body: Callable[[str], bool],
                   ended: Callable[[float, bool], None], *, wait: float = 0.0) -> bool:
        """``body(reason)`` under the cycle lock (skipped when it is held ``wait`` seconds
        more), its failure logged and counted, never raised; ``ended(seconds, ok)`` records
        it."""
        if not self._cycle_lock.acquire(timeout=wait if wait > 0 else -1, blocking=wait > 0):
            log.info("%s skipped: the previous cycle is still running", reason,
                     extra={"why": reason})
            return False
        if self.stop_event.is_set():  # stopping while it waited: start nothing new
            self._cycle_lock.release()
            return False
        started = time.monotonic()
        self.status.cycle_started = started
        ok = False
        try:
            ok = body(reason)
            return ok
        except Exception as exc:  # the loop must survive anything one cycle meets
            self.metrics.error(_reason(exc))
            if isinstance(exc, KarchiveError):
                log.error("cycle failed: %s", exc, extra={"why": reason})
            else:
                log.exception("cycle failed unexpectedly", extra={"why": reason})
            return False
        finally:
            ended(time.monotonic() - started, ok)
            self.status.cycle_started = None
            self._cycle_lock.release()

    def _keep_server(self, policy: Policy) -> KeepServer | None:
        """The keep listener when ``--keep-address`` asks for one (None when it does not);
        UsageError, one line, when it cannot be served."""
        address = self.settings.keep_address
        if address is None:
            return None
        if self.settings.plan_only:
            # A keep writes tags to Kaltura; a plan-only daemon writes nothing (invariant 5).
            raise UsageError("--keep-address adds keep tags in Kaltura, and --plan-only writes "
                             "nothing; run the keep links on the daemon that acts")
        if policy.notices is None or policy.notices.keep is None:
            raise UsageError("--keep-address needs the policy's notices.keep section "
                             "(base_url, secret_file); add it or leave --keep-address out")
        self._adopt(policy)
        assert self._adapters is not None
        try:
            keep = _keep_listener(self._adapters, address, self.metrics)
        except OSError as exc:
            raise UsageError(f"cannot serve keep links on {address[0]}:{address[1]} "
                             f"({exc.strerror or exc}); choose another --keep-address") from None
        log.info("serving keep links", extra={"keep_url": keep.url,
                                              "public": policy.notices.keep.base_url})
        return keep

    def _ready(self) -> tuple[Policy, Adapters, bool] | None:
        """The policy in force, its adapters, and whether this daemon acts (None: no good
        policy yet; the error was logged and counted)."""
        self.tick()
        self.source.refresh()
        policy = self.source.policy
        if policy is None:
            return None
        self._adopt(policy)
        adapters = self._adapters
        assert adapters is not None
        self.metrics.paused(policy.suspend)
        # Plan-only writes nothing, not even the lease object (design.md invariant 5).
        acting = False
        if not self.settings.plan_only:
            acting = self._hold_lease() and not policy.suspend
        return policy, adapters, acting

    def _cycle(self, reason: str) -> bool:
        ready = self._ready()
        if ready is None:
            return False
        policy, adapters, acting = ready
        try:
            started = self._watch.cycle_starting(adapters, acting)
            observed = self._observe(adapters, acting)
        except KarchiveError as exc:
            self._blame(exc)
            raise
        planned = observed.planned
        self._thaws.cycle_done()
        self.status.kaltura = self.status.s3 = "ok"
        self.status.observed = True

        plan, observation = planned.plan, planned.observation
        # The counts of policies.counts, as the plan and the reports show them.
        self.metrics.observed(plan.census)
        self.metrics.pending(Counter(item.action.value for item in plan.changes))
        self._watch.follow(plan)
        self.status.in_flight = len(self._watch.in_flight)
        log.info("observed %d entries in %.1fs (%d Kaltura calls, %d S3 calls): %s",
                 observation.entries, observation.seconds, observation.kaltura_calls,
                 observation.s3_calls, plan.summary(),
                 extra={"why": reason, "acting": acting})
        if not acting:
            # The whole diff when it changed; a steady plan-only daemon logs only the summary.
            shape = _shape(plan)
            if shape != self._last_shape:
                _log_plan(plan, self._why_not_acting(policy))
            self._last_shape = shape
            return True
        self._last_shape = ""
        self._notify(plan, adapters)
        if observed.source == "index" and plan.has_changes and guard(plan, policy) is None:
            # The index is evidence: what this cycle acts on is observed again, by id.
            try:
                plan = self._informer.fresh(adapters, plan)
            except KarchiveError as exc:
                self._blame(exc)
                raise
        self._execute(plan, adapters)
        self._watch.cycle_done(started)
        return True

    def _observe(self, adapters: Adapters, acting: bool) -> Observed:
        """An acting daemon's cycle reads Kaltura through its entry index (``runtime/index.py``:
        a full walk every resync_interval, what changed in between); one that does not act
        writes nothing, not even the index, and walks in full."""
        if not acting:
            planned = Pipeline(adapters).run(each=self._thaws.see)
            return Observed(planned, "walk", None, "not acting")
        observed = self._informer.observe(adapters, each=self._thaws.see)
        refreshed = observed.refreshed
        if refreshed is not None:
            log.info("index refreshed: %d entries edited or read again, %d played, %d gone "
                     "since Kaltura's %d", refreshed.edited, refreshed.played, refreshed.gone,
                     refreshed.since)
        else:
            log.info("walked the whole catalogue (%s); the index is rebuilt from it",
                     observed.why_walk)
        self.metrics.observation_source(observed.source)
        return observed

    def _notify(self, plan: Plan, adapters: Adapters) -> None:
        """The cycle's owner notices, before the changes: a failure to send holds only the
        entries concerned (they are not due), never the rest of the cycle."""
        try:
            report = notify(plan, adapters)
        except KarchiveError as exc:  # the address book or the mail server cannot be set up
            self.metrics.error(_reason(exc))
            log.error("owner notices not sent this cycle: %s", exc)
            return
        for line in report.lines():
            log.info("%s", line)

    def _execute(self, plan: Plan, adapters: Adapters) -> None:
        if not plan.has_changes:
            return
        hooks = Hooks(should_stop=self._should_stop, on_item=self._on_item)
        report = execute(plan, adapters, self._journal(), backoffs=self._store().backoffs,
                         hooks=hooks)
        _log_report(report)
        if report.refused:
            self.metrics.error("guard_refused")
        for line in tell_restored(plan, report, adapters):
            log.info("%s", line)

    def _journal(self) -> Journal:
        """This cycle's journal: its lines are shipped at the cycle's end."""
        return Journal(self._state_dir() / JOURNAL_DIR)

    def _state_dir(self) -> Path:
        return state_dir(self.settings.state_dir)

    def _store(self) -> StateStore:
        """The state store, opened once: the backoffs of every earlier cycle and run."""
        if self._state is None:
            self._state = StateStore.open(ensure_dir(self._state_dir()))
        return self._state

    def _on_item(self, item: ItemReport) -> None:
        """The executor's report of one item: a thaw requested starts its restore wait."""
        self._thaws.requested(item.entry_id, item.action, item.result)

    def _should_stop(self) -> bool:
        """The executor's safe-point check: shutting down, or no longer the lease holder."""
        return self.stop_event.is_set() or (self._lease is not None and not self._lease.held)

    def _why_not_acting(self, policy: Policy) -> str:
        if self.settings.plan_only:
            return "plan-only"
        if policy.suspend:
            return "suspended by the policy"
        return "standby: another daemon holds the lease, or shards of another count run"

    def _adopt(self, policy: Policy) -> None:
        """(Re)build the adapters and the lease when their settings changed
        (``controller/compose.py``), and the schedule when it changed."""
        key = (policy.kaltura, policy.storage.location, policy.storage.prefix,
               policy.storage.endpoint_url, policy.storage.region, policy.directory,
               policy.uses_owner_status())
        if key != self._policy_key:
            if self._lease is not None:
                self._lease.release()
            if self._adapters is not None:
                self._adapters.close()
            # One tally for /metrics; the pipeline reads each observation's own share of it.
            self._adapters = compose(policy, metrics=CallCounter(self.metrics),
                                     shard=self.settings.shard)
            self._lease = self._adapters.lease(duration=self.settings.lease_duration)
            self._policy_key = key
        elif self._adapters is not None and self._adapters.policy is not policy:
            self._adapters = self._adapters.serving(policy)  # new rules, the same connections
        self._reschedule(policy)

    def _hold_lease(self) -> bool:
        lease = self._lease
        assert lease is not None
        try:
            held = lease.acquire()
            self.status.s3 = "ok"
        except KarchiveError as exc:
            self.status.s3 = str(exc)
            held = lease.held
        self.metrics.leader(held)
        return held

    def renew_lease(self) -> None:
        """The scheduler's lease job: the holder renews through long cycles; a standby retries,
        so it takes over soon after the holder's lease lapses, not at its next cycle."""
        if self._lease is not None and not self.settings.plan_only \
                and not self.stop_event.is_set():
            self._hold_lease()

    def restore_check(self) -> bool:
        """The faster job (``runtime/watch.py``): the placeholders played since the last check
        and the entries in flight, through the pipeline and the executor; a full cycle while
        no mark is recorded. False when skipped or failed."""
        if self.stop_event.is_set():
            return False
        return self._exclusive("restore check", self._restore_check, self.metrics.restore_check)

    def _restore_check(self, reason: str) -> bool:
        ready = self._ready()
        if ready is None:
            return False
        _policy, adapters, acting = ready
        if self._watch.needs_cycle(adapters, acting):
            log.info("restore check: no mark recorded yet, a full cycle instead")
            started, ok = time.monotonic(), False
            try:
                ok = self._cycle(reason)
                return ok
            finally:
                self._cycle_ended(time.monotonic() - started, ok)
        try:
            checked = self._watch.check(adapters, acting=acting, each=self._thaws.see)
        except KarchiveError as exc:
            self._blame(exc)
            raise
        self.status.kaltura = self.status.s3 = "ok"
        self.metrics.restore_checked(checked.played, checked.followed, checked.checked_at)
        self._thaws.cycle_done(only=checked.observed)
        _log_check(checked, reason, acting)
        if checked.plan is not None and acting:
            self._execute(checked.plan, adapters)
        self._watch.done(checked, acting)
        self.status.in_flight = len(self._watch.in_flight)
        return True

    def tick(self) -> None:
        self.status.last_tick = time.monotonic()
        self.metrics.heartbeat()

    def _blame(self, exc: KarchiveError) -> None:
        """The failed system's readiness check says why, by the error's source. (An error with
        no source is karchive's own finding in what the walk returned: Kaltura's side.)"""
        where = "s3" if exc.source in (Source.S3, Source.DIRECTORY) else "kaltura"
        setattr(self.status, where, str(exc))

    # -- scheduling -----------------------------------------------------------------------------
    def _interval_seconds(self) -> float:
        return schedule.interval_seconds(self.source.policy, self.settings.interval)

    def _triggers(self, policy: Policy) -> tuple[BaseTrigger, BaseTrigger]:
        return schedule.triggers(policy, self.settings.interval)

    def _reschedule(self, policy: Policy) -> None:
        key = (policy.schedule, self.settings.interval)
        if self._scheduler is None or key == self._schedule_key:
            return
        main, check = self._triggers(policy)
        self._scheduler.reschedule_job("cycle", trigger=main)
        self._scheduler.reschedule_job("restore-check", trigger=check)
        self.metrics.schedule_interval(self._interval_seconds())
        if self._schedule_key is not None:
            log.info("schedule changed", extra={"schedule": str(main)})
        self._schedule_key = key

    def start_scheduler(self) -> None:
        policy = self.source.policy
        assert policy is not None, "start the scheduler once a policy is loaded"
        main, check = self._triggers(policy)
        self._scheduler = schedule.scheduler({
            "cycle": (self.cycle, main),
            "restore-check": (self.restore_check, check),
            "lease": (self.renew_lease, schedule.every(max(1.0, self.settings.lease_duration / 3))),
            "heartbeat": (self.tick, schedule.every(self.settings.heartbeat)),
        }, first="cycle")
        self._schedule_key = (policy.schedule, self.settings.interval)
        self.metrics.schedule_interval(self._interval_seconds())
        self._scheduler.start()

    # -- the process ----------------------------------------------------------------------------
    def close(self) -> None:
        """Release the lease and close the adapters (the end of :meth:`run`; tests that drive
        cycles by hand stop a daemon with it)."""
        if self._lease is not None:
            self._lease.release()
        if self._adapters is not None:
            self._adapters.close()
        self.metrics.leader(False)

    def run(self) -> int:
        """Serve until :attr:`stop_event` is set (SIGTERM/SIGINT); returns the exit code."""
        self.source.refresh()
        if self.source.policy is None:
            return 1  # the one-line error is logged; a daemon never starts on a broken policy
        try:
            # An unwritable state directory is said now, not at the first copy.
            self._journal()
            self._store()
        except KarchiveError as exc:
            log.error("%s", exc)
            return 1
        try:
            keep = self._keep_server(self.source.policy)
        except UsageError as exc:
            log.error("%s", exc)
            return 1
        server = MetricsServer(self.metrics, self, self.settings.metrics_address,
                               self.settings.metrics_port).start()
        log.info("serving /metrics, /healthz and /readyz",
                 extra={"url": server.url, "shard": str(self.settings.shard)})
        self.start_scheduler()
        try:
            self.stop_event.wait()
            log.info("stopping: no new cycles; in-flight steps get %.0fs to reach a safe point",
                     self.settings.grace_period)
            assert self._scheduler is not None
            self._scheduler.shutdown(wait=False)
            if self._cycle_lock.acquire(timeout=self.settings.grace_period):
                self._cycle_lock.release()
            else:
                log.warning("grace period over with a cycle still running; exiting anyway "
                            "(the next run observes again and finishes what this one began)")
        finally:
            self.close()
            server.stop()
            if keep is not None:
                keep.stop()
        log.info("stopped")
        return 0


def _keep_listener(adapters: Adapters, address: tuple[str, int], metrics: Metrics) -> KeepServer:
    """The keep links' listener over the adapters' archive (the grants) and Kaltura (the tags);
    every keep counted in ``karchive_keeps_total``."""
    policy = adapters.policy
    assert policy.notices is not None and policy.notices.keep is not None
    store = NoticeStore(adapters.store.archive(), policy.storage.prefix)
    keeper = Keeper(policy.notices.keep, store, KalturaWriter(adapters.kaltura),
                    on_keep=metrics.kept)
    return KeepServer(keeper, *address).start()


def _reason(exc: BaseException) -> str:
    """A bounded label for errors_total: the error's class, never its message."""
    return type(exc).__name__.lower()


def _shape(plan: Plan) -> str:
    """A digest of the plan's changes (entry and action, in plan order): equal when the diff
    is, without holding a set of a million items between cycles."""
    digest = hashlib.sha256()
    for item in plan.changes:
        digest.update(f"{item.entry_id}\0{item.action.value}\n".encode())
    return digest.hexdigest()


def _log_check(checked: Checked, reason: str, acting: bool) -> None:
    plan = checked.plan
    log.info("restore check: %d placeholders played since %s, %d in flight (%d Kaltura calls): "
             "%s", checked.played, checked.since if checked.since is not None else "-",
             checked.followed, checked.kaltura_calls,
             plan.summary() if plan is not None else "No changes.",
             extra={"why": reason, "acting": acting})


def _log_report(report: RunReport) -> None:
    """A cycle's execution in the log: deferrals, then what came of it."""
    for line in report.deferrals():
        log.info("%s", line)
    if report.refused:
        # The guard's reason is the operator's next step (check the observation or raise a
        # limit): say it, every cycle, until it is dealt with.
        log.warning("apply refused: %s", report.refused)
    elif not report.ok:
        # Failed items are counted per action (transitions_total{result="failed"}) and backed
        # off by the executor; the cycle itself completed, so the loop is healthy.
        log.warning("%s Failed entries are logged above.", report.summary())
    else:
        log.info("%s", report.summary())


def _log_plan(plan: Plan, why: str, limit: int = 1000) -> None:
    """The diff, one line an item with its entry id as a field (capped: a first run on 200,000
    entries must not write 200,000 lines every cycle)."""
    total = sum(plan.count(action) for action in Action if action.executable)
    if not total:
        return
    log.info("would change %d entries (%s): %s", total, why, plan.summary())
    for item in itertools.islice(plan.changes, limit):
        log.info("%s %s: %s", item.action.value, item.entry_id, item.reason,
                 extra={"entry_id": item.entry_id, "action": item.action.value,
                        "rule": item.rule, "bytes": item.bytes})
    if total > limit:
        log.info("... and %d more", total - limit)
