"""When the daemon's cycles run: the policy's schedule as APScheduler triggers.

``runtime/daemon.py`` runs the pipeline on these: the main trigger (the policy's ``schedule``,
interval or cron, with jitter; ``--interval`` overrides it), a faster restore check
(``runtime/watch.py``: the placeholders played since the last check and the entries in flight),
the lease renewal and a heartbeat. Cycles never overlap: ``max_instances=1`` and ``coalesce`` on
every job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from policies.schema import Policy

DEFAULT_INTERVAL = 3600.0  # what a schedule that never fires again counts as


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def capped(jitter: int | None, interval: float) -> int | None:
    """Jitter of at most half the interval: a 5 min policy jitter on a 10 s ``--interval`` would
    otherwise delay every cycle by minutes, and cycles would stop looking periodic at all."""
    if jitter is None:
        return None
    return min(jitter, int(interval // 2)) or None


def triggers(policy: Policy, interval: float | None) -> tuple[BaseTrigger, BaseTrigger]:
    """(the cycle's trigger, the restore check's trigger); ``interval`` overrides the policy."""
    schedule = policy.schedule
    jitter = int(schedule.jitter.seconds) or None
    if interval is not None:
        main: BaseTrigger = IntervalTrigger(seconds=interval, jitter=capped(jitter, interval))
        return main, IntervalTrigger(seconds=max(1.0, interval / 2))
    if schedule.cron is not None:
        cron = CronTrigger.from_crontab(schedule.cron, timezone="UTC")
        cron.jitter = jitter  # from_crontab takes no jitter; the trigger honours the field
        main = cron
    else:
        assert schedule.interval is not None
        seconds = schedule.interval.seconds
        main = IntervalTrigger(seconds=seconds, jitter=capped(jitter, seconds))
    return main, IntervalTrigger(seconds=schedule.restore_check_interval.seconds)


def interval_seconds(policy: Policy | None, interval: float | None) -> float:
    """Seconds between scheduled cycles (for a cron schedule: the next gap)."""
    if interval is not None:
        return interval
    if policy is None:
        return DEFAULT_INTERVAL
    schedule = policy.schedule
    if schedule.interval is not None:
        return float(schedule.interval.seconds)
    trigger = CronTrigger.from_crontab(schedule.cron or "", timezone="UTC")
    first = trigger.get_next_fire_time(None, utcnow())
    if first is None:
        return DEFAULT_INTERVAL
    second = trigger.get_next_fire_time(first, first + dt.timedelta(seconds=1))
    return (second - first).total_seconds() if second else DEFAULT_INTERVAL


def scheduler(jobs: dict[str, tuple[Callable[[], object], BaseTrigger]], *,
              first: str) -> BackgroundScheduler:
    """A scheduler with ``jobs`` (id → function, trigger); ``first`` also runs at once, so
    ``/readyz`` turns green without waiting an interval."""
    made = BackgroundScheduler(timezone="UTC", job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": None,
    })
    for job_id, (function, trigger) in jobs.items():
        if job_id == first:
            made.add_job(function, trigger, id=job_id, next_run_time=utcnow())
        else:
            made.add_job(function, trigger, id=job_id)
    return made


def every(seconds: float) -> IntervalTrigger:
    return IntervalTrigger(seconds=seconds)
