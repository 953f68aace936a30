"""The daemon behind ``karchive run``: the reconciliation loop, for ever, on the policy's schedule.

One cycle is the whole pipeline (design.md "Layout"), with the daemon's duties around it:

    reload policy.yaml if it changed  (invalid: log one line, count it, keep the last good one)
    → suspend?   (paused gauge: observe and report, change nothing)
    → the lease  (standby when another daemon holds it: observe and report, change nothing)
    → observe → diff → export metrics (entries by state, pending changes, thaws)
    → execute the plan, unless plan-only, paused or standby.

APScheduler (3.x ``BackgroundScheduler``) fires the cycle on the policy's ``schedule`` (interval
or cron, with jitter), a faster restore check that runs a cycle only while thaws or restores are
in flight, the lease renewal (so a long copy never outlives the lease) and a heartbeat for
``/healthz``. Cycles never overlap: ``max_instances=1`` and ``coalesce`` on the job, and a lock
shared by the two jobs that start cycles. SIGTERM/SIGINT set the stop event: scheduling stops,
the executor reaches a safe point (it checks the same event) within the grace period, the lease
is released, and the process exits 0.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.adapters.storage.lease import LEASE_NAME, Lease
from controller.errors import KarchiveError
from controller.runtime.http import Checks, MetricsServer
from controller.runtime.journal import JOURNAL_DIR, Journal, state_dir
from controller.runtime.metrics import Metrics
from policies.observed import RestoreStatus
from policies.schema import Policy

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0


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
    state_dir: Path | None = None  # the journal's home (journal.state_dir decides)


class PolicySource:
    """policy.yaml as the daemon sees it: re-read when its bytes change, the last good kept."""

    def __init__(self, path: Path, metrics: Metrics) -> None:
        self.path = path
        self._metrics = metrics
        self._stamp: tuple[int, int] | None = None  # (mtime_ns, size): a cheap "changed?"
        self._digest = ""
        self.policy: Policy | None = None
        self.error: str | None = None  # the last rejected edit, until a good one replaces it

    def refresh(self) -> bool:
        """Re-read the file if it changed; True when a new valid policy took effect."""
        from policies.loader import PolicyError, parse_policy

        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == self._stamp:
                return False
            data = self.path.read_bytes()
        except OSError as exc:
            return self._reject(f"{self.path}: cannot read the policy ({exc.strerror}); "
                                "check the path given with -f")
        self._stamp = stamp
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            return False  # touched, not changed
        self._digest = digest
        try:
            text = data.decode("utf-8")
            policy = parse_policy(text, str(self.path), base_dir=self.path.parent)
        except UnicodeDecodeError:
            return self._reject(f"{self.path}: the policy is not UTF-8 text; save it as UTF-8")
        except PolicyError as exc:
            return self._reject(str(exc))
        first = self.policy is None
        self.policy, self.error = policy, None
        self._metrics.edit_rejected(False)
        log.info("policy loaded" if first else "policy reloaded",
                 extra={"policy": str(self.path), "rules": len(policy.rules),
                        "sha256": digest[:12]})
        return True

    def _reject(self, message: str) -> bool:
        self.error = message
        self._metrics.reload_failed()
        self._metrics.edit_rejected(self.policy is not None)  # an older policy is in force
        if self.policy is None:
            log.error("policy invalid: %s", message)
        else:
            log.error("policy edit rejected, the last good policy stays in force: %s", message)
        return False


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
        self.source = PolicySource(settings.policy_path, self.metrics)
        self.stop_event = threading.Event()
        self.status = _Status()
        self._cycle_lock = threading.Lock()
        self._policy_key: tuple[Any, ...] | None = None  # what the session/clients were made for
        self._session: Any = None
        self._s3: Any = None
        self._lease: Lease | None = None
        self._scheduler: Any = None
        self._schedule_key: tuple[Any, ...] | None = None
        self._last_shape: frozenset[tuple[str, Any]] = frozenset()
        self._thaw_seen: dict[str, float] = {}  # entry id -> when first seen thawing (unix)

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
        """One reconciliation. Returns False when skipped (another cycle runs) or failed."""
        if not self._cycle_lock.acquire(blocking=False):
            log.info("cycle skipped: the previous one is still running", extra={"why": reason})
            return False
        started = time.monotonic()
        self.status.cycle_started = started
        ok = False
        try:
            ok = self._cycle(reason)
            return ok
        except Exception as exc:  # the loop must survive anything one cycle meets
            self.metrics.error(_reason(exc))
            if isinstance(exc, KarchiveError):
                log.error("cycle failed: %s", exc, extra={"why": reason})
            else:
                log.exception("cycle failed unexpectedly", extra={"why": reason})
            return False
        finally:
            self.metrics.cycle(time.monotonic() - started, ok)
            self.status.cycle_started = None
            self.status.cycles += 1
            self._cycle_lock.release()

    def _cycle(self, reason: str) -> bool:
        from controller.runtime.observe import _Tee, observe
        from policies.plan import diff

        self.tick()
        self.source.refresh()
        policy = self.source.policy
        if policy is None:
            return False  # nothing good to run on yet; the error was logged and counted
        self._adopt(policy)
        self.metrics.paused(policy.suspend)

        # Plan-only writes nothing, not even the lease object (design.md invariant 5).
        acting = False
        if not self.settings.plan_only:
            acting = self._hold_lease() and not policy.suspend
        # A fresh tally per cycle (the observation's own figures) that forwards to /metrics.
        counter = _Tee(self.metrics)
        self._session.metrics = counter
        try:
            observation = observe(self._session, self._s3, policy, counter=counter)
        except KarchiveError as exc:
            self._blame(exc)
            raise
        self.status.kaltura = self.status.s3 = "ok"
        self.status.observed = True

        plan = diff(observation.entries, policy, observation.observed_at,
                    observation.placeholder_size)
        # The counts of policies.counts, as the plan and the reports show them.
        self.metrics.observed(plan.census)
        self.metrics.pending(Counter(item.action.value for item in plan.changes))
        self._track_thaws(observation.entries)
        self.status.in_flight = _in_flight(plan)
        log.info("observed %d entries in %.1fs (%d Kaltura calls, %d S3 calls): %s",
                 len(observation.entries), observation.seconds, observation.kaltura_calls,
                 observation.s3_calls, plan.summary(),
                 extra={"why": reason, "acting": acting})
        if not acting:
            # The whole diff when it changed; a steady plan-only daemon logs only the summary.
            shape = frozenset((item.entry_id, item.action) for item in plan.changes)
            if shape != self._last_shape:
                _log_plan(plan, self._why_not_acting(policy))
            self._last_shape = shape
            return True
        self._last_shape = frozenset()
        return self._execute(plan, policy)

    def _execute(self, plan: Any, policy: Policy) -> bool:
        if not plan.has_changes:
            return True
        from controller.runtime import executor

        report = executor.run_plan(
            plan, policy, session=self._session, s3=self._s3, metrics=self.metrics,
            should_stop=self._should_stop, on_item=self._on_item, journal=self._journal(),
        )
        for line in report.deferrals():
            log.info("%s", line)
        if report.refused:
            # The guard's reason is the operator's next step (check the observation or raise
            # a limit): say it, every cycle, until it is dealt with.
            self.metrics.error("guard_refused")
            log.warning("apply refused: %s", report.refused)
        elif not report.ok:
            # Failed items are counted per action (transitions_total{result="failed"}) and
            # backed off by the executor; the cycle itself completed, so the loop is healthy.
            log.warning("%s Failed entries are logged above.", report.summary())
        else:
            log.info("%s", report.summary())
        return True

    def _journal(self) -> Journal:
        """The journal, read afresh each cycle so backoffs written by other runs count."""
        return Journal(state_dir(self.settings.state_dir) / JOURNAL_DIR)

    def _track_thaws(self, entries: Any) -> None:
        """How long each thaw took, into ``karchive_restore_wait_seconds``: from the thaw
        request (this daemon's, or the first cycle that found one under way) to the first
        cycle that sees the copy thawed (precise to a restore-check interval). A thaw whose
        entry vanished or whose copy froze again is dropped, not observed."""
        from policies.counts import thawing

        now = time.time()
        copies = {e.entry_id: e.archive for e in entries if e.archive is not None}
        for entry_id in list(self._thaw_seen):
            copy = copies.get(entry_id)
            if copy is not None and copy.restore is RestoreStatus.THAWING:
                continue
            since = self._thaw_seen.pop(entry_id)
            if copy is not None and copy.restore is RestoreStatus.THAWED:
                self.metrics.restore_wait(now - since)
        for entry in entries:
            if thawing(entry):
                self._thaw_seen.setdefault(entry.entry_id, now)

    def _on_item(self, item: Any) -> None:
        """The executor's report of one item: a thaw requested starts its restore wait."""
        if item.action == "thaw" and item.result == "done":
            self._thaw_seen.setdefault(item.entry_id, time.time())

    def _should_stop(self) -> bool:
        """The executor's safe-point check: shutting down, or no longer the lease holder."""
        return self.stop_event.is_set() or (self._lease is not None and not self._lease.held)

    def _why_not_acting(self, policy: Policy) -> str:
        if self.settings.plan_only:
            return "plan-only"
        if policy.suspend:
            return "suspended by the policy"
        return "standby: another daemon holds the lease"

    def _adopt(self, policy: Policy) -> None:
        """(Re)build the Kaltura session, the S3 client and the lease when their settings
        changed, and the schedule when it changed."""
        key = (policy.kaltura, policy.storage.location, policy.storage.prefix,
               policy.storage.endpoint_url, policy.storage.region)
        if key != self._policy_key:
            from controller.adapters.kaltura.session import KalturaSession
            from controller.adapters.storage import backend

            if self._lease is not None:
                self._lease.release()
            self._session = KalturaSession(policy.kaltura, metrics=self.metrics)
            self._s3 = backend.connect(policy.storage)
            self._lease = backend.lease(policy.storage, self._s3,
                                        f"{policy.storage.prefix}{LEASE_NAME}",
                                        duration=self.settings.lease_duration)
            self._policy_key = key
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

    def restore_check(self) -> None:
        """The faster job: a cycle only while thaws or restores are in flight."""
        if self.status.in_flight and not self.stop_event.is_set():
            self.cycle("restore check")

    def tick(self) -> None:
        self.status.last_tick = time.monotonic()
        self.metrics.heartbeat()

    def _blame(self, exc: KarchiveError) -> None:
        text = str(exc)
        where = "s3" if ("s3" in text.lower() or "bucket" in text.lower()) else "kaltura"
        setattr(self.status, where, text)

    # -- scheduling -----------------------------------------------------------------------------
    def _interval_seconds(self) -> float:
        if self.settings.interval is not None:
            return self.settings.interval
        policy = self.source.policy
        if policy is None:
            return 3600.0
        schedule = policy.schedule
        if schedule.interval is not None:
            return float(schedule.interval.seconds)
        from apscheduler.triggers.cron import CronTrigger

        trigger = CronTrigger.from_crontab(schedule.cron or "", timezone="UTC")
        first = trigger.get_next_fire_time(None, _utcnow())
        if first is None:
            return 3600.0
        second = trigger.get_next_fire_time(first, first + dt.timedelta(seconds=1))
        return (second - first).total_seconds() if second else 3600.0

    def _triggers(self, policy: Policy) -> tuple[Any, Any]:
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        schedule = policy.schedule
        jitter = int(schedule.jitter.seconds) or None
        if self.settings.interval is not None:
            interval = self.settings.interval
            main: Any = IntervalTrigger(seconds=interval, jitter=_capped(jitter, interval))
            check = IntervalTrigger(seconds=max(1.0, interval / 2))
            return main, check
        if schedule.cron is not None:
            main = CronTrigger.from_crontab(schedule.cron, timezone="UTC")
            main.jitter = jitter  # from_crontab takes no jitter; the trigger honours the field
        else:
            assert schedule.interval is not None
            interval = schedule.interval.seconds
            main = IntervalTrigger(seconds=interval, jitter=_capped(jitter, interval))
        check = IntervalTrigger(seconds=schedule.restore_check_interval.seconds)
        return main, check

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
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        policy = self.source.policy
        assert policy is not None, "start the scheduler once a policy is loaded"
        scheduler = BackgroundScheduler(timezone="UTC", job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": None,
        })
        main, check = self._triggers(policy)
        # The first cycle runs at once, so /readyz turns green without waiting an interval.
        scheduler.add_job(self.cycle, main, id="cycle", next_run_time=_utcnow())
        scheduler.add_job(self.restore_check, check, id="restore-check")
        scheduler.add_job(self.renew_lease, IntervalTrigger(
            seconds=max(1.0, self.settings.lease_duration / 3)), id="lease")
        scheduler.add_job(self.tick, IntervalTrigger(seconds=self.settings.heartbeat),
                          id="heartbeat")
        self._scheduler = scheduler
        self._schedule_key = (policy.schedule, self.settings.interval)
        self.metrics.schedule_interval(self._interval_seconds())
        scheduler.start()

    # -- the process ----------------------------------------------------------------------------
    def run(self) -> int:
        """Serve until :attr:`stop_event` is set (SIGTERM/SIGINT); returns the exit code."""
        self.source.refresh()
        if self.source.policy is None:
            return 1  # the one-line error is logged; a daemon never starts on a broken policy
        try:
            self._journal()  # an unwritable state directory is said now, not at the first copy
        except KarchiveError as exc:
            log.error("%s", exc)
            return 1
        server = MetricsServer(self.metrics, self, self.settings.metrics_address,
                               self.settings.metrics_port).start()
        log.info("serving /metrics, /healthz and /readyz", extra={"url": server.url})
        self.start_scheduler()
        try:
            self.stop_event.wait()
            log.info("stopping: no new cycles; in-flight steps get %.0fs to reach a safe point",
                     self.settings.grace_period)
            self._scheduler.shutdown(wait=False)
            if self._cycle_lock.acquire(timeout=self.settings.grace_period):
                self._cycle_lock.release()
            else:
                log.warning("grace period over with a cycle still running; exiting anyway "
                            "(the journal lets the next run resume)")
        finally:
            if self._lease is not None:
                self._lease.release()
            self.metrics.leader(False)
            server.stop()
        log.info("stopped")
        return 0


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _reason(exc: BaseException) -> str:
    """A bounded label for errors_total: the error's class, never its message."""
    return type(exc).__name__.lower()


def _in_flight(plan: Any) -> int:
    from policies.plan import Action

    busy = (Action.THAW, Action.RESTORE, Action.WAIT)
    return sum(1 for i in plan.items if i.action in busy)


def _log_plan(plan: Any, why: str, limit: int = 1000) -> None:
    """The diff, one line an item with its entry id as a field (capped: a first run on 200,000
    entries must not write 200,000 lines every cycle)."""
    changes = [i for i in plan.items if i.action.executable]
    if not changes:
        return
    log.info("would change %d entries (%s): %s", len(changes), why, plan.summary())
    for item in changes[:limit]:
        log.info("%s %s: %s", item.action.value, item.entry_id, item.reason,
                 extra={"entry_id": item.entry_id, "action": item.action.value,
                        "rule": item.rule, "bytes": item.bytes})
    if len(changes) > limit:
        log.info("... and %d more", len(changes) - limit)


def _capped(jitter: int | None, interval: float) -> int | None:
    """Jitter of at most half the interval: a 5 min policy jitter on a 10 s ``--interval`` would
    otherwise delay every cycle by minutes, and cycles would stop looking periodic at all."""
    if jitter is None:
        return None
    return min(jitter, int(interval // 2)) or None
