"""Every Prometheus metric karchive exports, defined here and nowhere else; and the call tally.

The recording end of the pipeline, with the journal. The daemon builds one :class:`Metrics`
and ``controller/compose.py`` hands it to the adapters, the executor and the reconcilers; they
call its methods (``kaltura_call``, ``s3_call``, ``ldap_call``, ``transition``,
``bytes_archived`` ...) and never touch prometheus-client themselves. Code run outside the daemon
(``karchive plan``, ``apply``) passes :class:`NullMetrics`; tests that want to see what was
recorded pass :class:`RecordingMetrics`. :class:`CallCounter` sits in front of any of them and
keeps the calls in memory too, so an observation can say what it cost.

Naming follows Prometheus conventions (design.md "Interfaces users expect"): the ``karchive_``
prefix, base units (seconds, bytes), ``_total`` on counters, and never an entry id as a label
value, so cardinality is bounded by the number of states, actions and reasons.
Each :class:`Metrics` owns its own ``CollectorRegistry`` so tests may build many side by side.
"""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Iterator, Mapping
from importlib import metadata
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.metrics_core import Metric

from controller.adapters.kaltura.session import SUB_CALL_PREFIX
from policies.counts import Census

PREFIX = "karchive"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# A cycle observes the whole catalogue: seconds for a small partner, many minutes for 200,000
# entries with copies running.
CYCLE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
# Copies of videos from kilobytes to over 10 GB: seconds to a couple of hours.
COPY_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
# Glacier restores: Expedited in minutes, Standard 3-5 h (12 h Deep Archive), Bulk up to 48 h
# (reference/s3-glacier.md).
RESTORE_BUCKETS = (
    60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 6 * 3600, 12 * 3600, 24 * 3600, 36 * 3600,
    48 * 3600, 72 * 3600,
)  # fmt: skip


def version() -> str:
    """The installed karchive version, or "0+unknown" when run from a bare source tree."""
    try:
        return metadata.version("karchive")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class Metrics:
    """The live metrics of one daemon. Thread-safe (prometheus-client locks each child)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:  # long: families
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        p = PREFIX
        self._entries_observed = Gauge(f"{p}_entries_observed", "Entries by observed state.",
                                       ["state"], registry=r)
        self._entries_desired = Gauge(f"{p}_entries_desired", "Entries by desired state.",
                                      ["state"], registry=r)
        self._unhealthy = Gauge(f"{p}_entries_unhealthy",
                                "Unhealthy entries: managed (karchive would act but cannot) "
                                "or unmanaged (reported only).", ["scope"], registry=r)
        self._pending = Gauge(f"{p}_pending_changes", "Changes the last plan holds, by action.",
                              ["action"], registry=r)
        self._transitions = Counter(f"{p}_transitions_total",
                                    "Transitions executed, by action and result.",
                                    ["action", "result"], registry=r)
        self._cycle = Histogram(f"{p}_cycle_duration_seconds",
                                "Wall time of one reconciliation cycle.",
                                buckets=CYCLE_BUCKETS, registry=r)
        self._cycles = Counter(f"{p}_cycles_total", "Cycles run, by result (ok, failed).",
                               ["result"], registry=r)
        self._errors = Counter(f"{p}_errors_total", "Errors, by reason.", ["reason"], registry=r)
        self._kaltura = Counter(f"{p}_kaltura_calls_total",
                                "Kaltura API calls, by service.action and outcome.",
                                ["operation", "outcome"], registry=r)
        self._s3 = Counter(f"{p}_s3_calls_total", "S3 API calls, by operation and outcome.",
                           ["operation", "outcome"], registry=r)
        self._ldap = Counter(f"{p}_ldap_calls_total",
                             "LDAP operations (bind, search), by operation and outcome.",
                             ["operation", "outcome"], registry=r)
        self._smtp = Counter(f"{p}_smtp_calls_total",
                             "SMTP commands (connect, starttls, login, send, quit), by operation "
                             "and outcome.", ["operation", "outcome"], registry=r)
        self._notices_sent = Counter(f"{p}_notices_sent_total",
                                     "Owner notices the mail server accepted (one per owner "
                                     "per cycle).", registry=r)
        self._notices_failed = Counter(f"{p}_notices_failed_total",
                                       "Owner notices not sent, by reason (bounced, no_address, "
                                       "failed); their entries are held.", ["reason"],
                                       registry=r)
        self._in_grace = Gauge(f"{p}_entries_in_grace",
                               "Entries whose swap or purge waits out its owner's notice.",
                               registry=r)
        self._awaiting = Gauge(f"{p}_entries_awaiting_notice",
                               "Entries whose swap or purge waits because their owner has not "
                               "been told yet (no address, a bounce, or not sent yet).",
                               registry=r)
        self._keeps = Counter(f"{p}_keeps_total",
                              "Entries kept by their owners with a notice's keep link.",
                              registry=r)
        self._archived = Counter(f"{p}_archived_bytes_total",
                                 "Bytes copied from Kaltura into the archive.", registry=r)
        self._restored = Counter(f"{p}_restored_bytes_total",
                                 "Bytes brought back from the archive into Kaltura.", registry=r)
        self._thaws = Gauge(f"{p}_thaws_in_progress",
                            "Entries whose archive copy is being restored from Glacier.",
                            registry=r)
        self._restore_wait = Histogram(f"{p}_restore_wait_seconds",
                                       "Time from a thaw request until the copy is readable.",
                                       buckets=RESTORE_BUCKETS, registry=r)
        self._copy = Histogram(f"{p}_copy_duration_seconds",
                               "Wall time of one archive copy (Kaltura to S3).",
                               buckets=COPY_BUCKETS, registry=r)
        self._last_success = Gauge(f"{p}_last_successful_cycle_timestamp_seconds",
                                   "Unix time at which the last successful cycle ended.",
                                   registry=r)
        self._heartbeat = Gauge(f"{p}_heartbeat_timestamp_seconds",
                                "Unix time of the scheduler's last sign of life.", registry=r)
        self._interval = Gauge(f"{p}_schedule_interval_seconds",
                               "Seconds between scheduled cycles (cron: the next gap).",
                               registry=r)
        self._reload_failures = Counter(f"{p}_policy_reload_failures_total",
                                        "Edits of policy.yaml rejected as invalid.", registry=r)
        self._rejected = Gauge(f"{p}_policy_edit_rejected",
                               "1 while the last edit of policy.yaml is rejected and the "
                               "previous policy stays in force.", registry=r)
        self._plan_only = Gauge(f"{p}_plan_only", "1 for a daemon run with --plan-only (it "
                                "never takes the lease).", registry=r)
        self._started = Gauge(f"{p}_started_timestamp_seconds",
                              "Unix time at which this daemon started.", registry=r)
        self._started.set(time.time())
        self._paused = Gauge(f"{p}_paused", "1 while the policy says suspend: true.", registry=r)
        self._leader = Gauge(f"{p}_leader", "1 while this daemon holds the bucket's lease.",
                             registry=r)
        self._build = Info(f"{p}_build", "The karchive build that runs.", registry=r)
        # The restore check (runtime/watch.py), between cycles.
        self._checks = Counter(f"{p}_restore_checks_total",
                               "Restore checks run, by result (ok, failed).", ["result"],
                               registry=r)
        self._check_seconds = Histogram(f"{p}_restore_check_duration_seconds",
                                        "Wall time of one restore check.",
                                        buckets=CYCLE_BUCKETS, registry=r)
        self._check_entries = Counter(f"{p}_restore_check_entries_total",
                                      "Entries the restore checks observed, by source (played: "
                                      "placeholders played since the mark; in_flight: thaws "
                                      "and restores followed by id).", ["source"], registry=r)
        self._check_mark = Gauge(f"{p}_restore_check_mark_timestamp_seconds",
                                 "Kaltura's clock (unix time) at the last restore check's "
                                 "listing of played placeholders.", registry=r)
        # The entry index (runtime/index.py): how each cycle read Kaltura's side.
        self._observations = Counter(f"{p}_observations_total",
                                     "Cycle observations, by source (walk: the whole catalogue "
                                     "walked and the index rebuilt; index: the index refreshed "
                                     "with what changed, then read).", ["source"], registry=r)
        self._build.info({"version": version(), "python": platform.python_version()})
        self._shard = ""  # the daemon's shard ("I/N"), on every series it serves; "" unsharded
        # Label values seen so far, so a state that empties drops to 0 instead of going stale.
        self._seen_lock = threading.Lock()
        self._seen: dict[str, set[str]] = {"observed": set(), "desired": set(), "pending": set()}

    # -- calls to the outside world -------------------------------------------------------------
    def kaltura_call(self, operation: str, outcome: str) -> None:
        self._kaltura.labels(operation, outcome).inc()

    def s3_call(self, operation: str, outcome: str) -> None:
        self._s3.labels(operation, outcome).inc()

    def ldap_call(self, operation: str, outcome: str) -> None:
        self._ldap.labels(operation, outcome).inc()

    def smtp_call(self, operation: str, outcome: str) -> None:
        self._smtp.labels(operation, outcome).inc()

    # -- owner notices --------------------------------------------------------------------------
    def notice(self, outcome: str) -> None:
        """One owner's message this cycle: ``sent``, or why not (``runtime/notices.Outcome``)."""
        if outcome == "sent":
            self._notices_sent.inc()
        else:
            self._notices_failed.labels(outcome).inc()

    def kept(self, entries: int) -> None:
        self._keeps.inc(entries)

    # -- what the executor did ------------------------------------------------------------------
    def transition(self, action: str, result: str) -> None:
        self._transitions.labels(action, result).inc()

    def bytes_archived(self, n: int) -> None:
        self._archived.inc(n)

    def bytes_restored(self, n: int) -> None:
        self._restored.inc(n)

    def error(self, reason: str) -> None:
        self._errors.labels(reason).inc()

    def restore_wait(self, seconds: float) -> None:
        self._restore_wait.observe(seconds)

    def copy_duration(self, seconds: float) -> None:
        self._copy.observe(seconds)

    # -- what the last observation and plan showed ----------------------------------------------
    def observed(self, census: Census) -> None:
        """The last observation's counts, as ``policies.counts`` defines them (every state is
        in the census, so a state that empties reads 0)."""
        self._set_all(self._entries_observed, "observed", census.by_state)
        self._set_all(self._entries_desired, "desired", census.by_desired)
        self._unhealthy.labels("managed").set(census.unhealthy_managed)
        self._unhealthy.labels("unmanaged").set(census.unhealthy_unmanaged)
        self._thaws.set(census.thaws_in_progress)
        self._in_grace.set(census.in_grace)
        self._awaiting.set(census.awaiting_notice)

    def pending(self, actions: Mapping[str, int]) -> None:
        self._set_all(self._pending, "pending", actions)

    def _set_all(self, gauge: Gauge, kind: str, counts: Mapping[str, int]) -> None:
        with self._seen_lock:
            seen = self._seen[kind]
            for label in seen - set(counts):
                gauge.labels(label).set(0)
            for label, count in counts.items():
                gauge.labels(str(label)).set(count)
            seen.update(str(label) for label in counts)

    # -- the loop itself ------------------------------------------------------------------------
    def cycle(self, seconds: float, ok: bool) -> None:
        self._cycle.observe(seconds)
        self._cycles.labels("ok" if ok else "failed").inc()
        if ok:
            self._last_success.set(time.time())

    def restore_check(self, seconds: float, ok: bool) -> None:
        self._check_seconds.observe(seconds)
        self._checks.labels("ok" if ok else "failed").inc()

    def restore_checked(self, played: int, in_flight: int, mark: int | None) -> None:
        """What one restore check observed; ``mark``: Kaltura's clock at its listing."""
        self._check_entries.labels("played").inc(played)
        self._check_entries.labels("in_flight").inc(in_flight)
        if mark is not None:
            self._check_mark.set(mark)

    def heartbeat(self) -> None:
        self._heartbeat.set(time.time())

    def schedule_interval(self, seconds: float) -> None:
        self._interval.set(seconds)

    def reload_failed(self) -> None:
        self._reload_failures.inc()

    def edit_rejected(self, value: bool) -> None:
        self._rejected.set(1 if value else 0)

    def plan_only(self, value: bool) -> None:
        self._plan_only.set(1 if value else 0)

    def paused(self, value: bool) -> None:
        self._paused.set(1 if value else 0)

    def leader(self, value: bool) -> None:
        self._leader.set(1 if value else 0)

    def observation_source(self, source: str) -> None:
        self._observations.labels(source).inc()

    def shard(self, label: str) -> None:
        """Label every served series ``shard="I/N"`` (``policies/shards.py``); an unsharded
        daemon's "" is no label at all, so its series stay the ones it always had."""
        self._shard = label

    # -- exposition -----------------------------------------------------------------------------
    def exposition(self) -> bytes:
        """The text format /metrics serves (with the shard's label, when sharded)."""
        if not self._shard:
            return generate_latest(self.registry)
        return generate_latest(_Labelled(self.registry, "shard", self._shard))

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        """One sample's current value (tests and /readyz read it; None when never set)."""
        return self.registry.get_sample_value(name, dict(labels or {}))


class _Labelled:
    """A registry's families with one more label on every sample (the daemon's shard): one
    constant label added where the series are served, not to every family's definition."""

    def __init__(self, registry: CollectorRegistry, name: str, value: str) -> None:
        self.registry, self.name, self.value = registry, name, value

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            labelled = Metric(family.name, family.documentation, family.type, family.unit)
            labelled.samples = [sample._replace(labels={**sample.labels, self.name: self.value})
                                for sample in family.samples]
            yield labelled


class NullMetrics:
    """The same methods as :class:`Metrics`, doing nothing: for plan/apply outside the daemon."""

    def kaltura_call(self, operation: str, outcome: str) -> None: ...
    def s3_call(self, operation: str, outcome: str) -> None: ...
    def ldap_call(self, operation: str, outcome: str) -> None: ...
    def smtp_call(self, operation: str, outcome: str) -> None: ...
    def notice(self, outcome: str) -> None: ...
    def kept(self, entries: int) -> None: ...
    def transition(self, action: str, result: str) -> None: ...
    def bytes_archived(self, n: int) -> None: ...
    def bytes_restored(self, n: int) -> None: ...
    def error(self, reason: str) -> None: ...
    def restore_wait(self, seconds: float) -> None: ...
    def copy_duration(self, seconds: float) -> None: ...
    def observed(self, census: Census) -> None: ...
    def pending(self, actions: Mapping[str, int]) -> None: ...
    def cycle(self, seconds: float, ok: bool) -> None: ...
    def heartbeat(self) -> None: ...
    def restore_check(self, seconds: float, ok: bool) -> None: ...
    def restore_checked(self, played: int, in_flight: int, mark: int | None) -> None: ...
    def schedule_interval(self, seconds: float) -> None: ...
    def reload_failed(self) -> None: ...
    def edit_rejected(self, value: bool) -> None: ...
    def plan_only(self, value: bool) -> None: ...
    def paused(self, value: bool) -> None: ...
    def leader(self, value: bool) -> None: ...
    def shard(self, label: str) -> None: ...
    def observation_source(self, source: str) -> None: ...


class RecordingMetrics(NullMetrics):
    """Remembers every call as ``(method, args)``: tests assert on what code reported."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._lock = threading.Lock()

    def __getattribute__(self, name: str) -> Any:
        attribute = super().__getattribute__(name)
        if name.startswith("_") or name in ("calls", "of") or not callable(attribute):
            return attribute

        def record(*args: Any) -> None:
            with super(RecordingMetrics, self).__getattribute__("_lock"):
                self.calls.append((name, args))

        return record

    def of(self, method: str) -> list[tuple[Any, ...]]:
        """The argument tuples of every call to ``method``, in order."""
        return [args for name, args in self.calls if name == method]


class CallCounter:
    """A metrics sink that counts every adapter call in memory, and passes each on to
    ``inner`` (the daemon's :class:`Metrics`, or nothing): what one observation cost."""

    def __init__(self, inner: Any = None) -> None:
        self.inner = inner if inner is not None else NullMetrics()
        self.kaltura: dict[tuple[str, str], int] = {}
        self.s3: dict[tuple[str, str], int] = {}
        self.ldap: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def _count(self, table: dict[tuple[str, str], int], key: tuple[str, str]) -> None:
        with self._lock:
            table[key] = table.get(key, 0) + 1

    def kaltura_call(self, operation: str, outcome: str) -> None:
        self._count(self.kaltura, (operation, outcome))
        self.inner.kaltura_call(operation, outcome)

    def s3_call(self, operation: str, outcome: str) -> None:
        self._count(self.s3, (operation, outcome))
        self.inner.s3_call(operation, outcome)

    def ldap_call(self, operation: str, outcome: str) -> None:
        self._count(self.ldap, (operation, outcome))
        self.inner.ldap_call(operation, outcome)

    def __getattr__(self, name: str) -> Any:
        # Everything else a metrics sink offers (transition, bytes_archived ...) goes through.
        return getattr(self.inner, name)

    @property
    def kaltura_total(self) -> int:
        """HTTP requests to Kaltura (a multirequest is one, whatever its sub-calls did)."""
        with self._lock:
            return sum(n for (_op, outcome), n in self.kaltura.items()
                       if not outcome.startswith(SUB_CALL_PREFIX))

    @property
    def s3_total(self) -> int:
        with self._lock:
            return sum(self.s3.values())

    def snapshot(self) -> dict[str, int]:
        """Every count as ``"kaltura:media.list:ok" -> n``."""
        with self._lock:
            return {f"{source}:{op}:{outcome}": n
                    for source, table in (("kaltura", self.kaltura), ("s3", self.s3),
                                          ("ldap", self.ldap))
                    for (op, outcome), n in table.items()}
