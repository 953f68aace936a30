"""The executor's scheduling, with stand-in reconcilers (the real ones are exercised end to end
in tests/apply): retries, backoff remembered in the state store, waiting, limits, timeouts,
stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.runtime.executor import Executor, Hooks, Timing
from controller.runtime.journal import Journal
from controller.runtime.state import StateStore
from policies.errors import IntegrityError, NetworkError, Source, TransientError
from policies.loader import parse_policy
from policies.plan import Action, Plan, PlanItem
from policies.schema import DesiredState
from policies.state import ObservedState
from reconcilers.base import Context, Outcome, Settings
from reconcilers.ports import NullMetrics

POLICY = """
version: 1
kaltura: {{service_url: "http://127.0.0.1:9", partner_id: 100, admin_secret: s}}
storage: {{bucket: bucket1}}
limits: {{concurrency: 2, transitions_per_cycle: {count}, bytes_per_cycle: {bytes}}}
"""


def _policy(count: int = 100, size: str = "1TiB"):
    return parse_policy(POLICY.format(count=count, bytes=size), "policy.yaml")


def _item(n: int, size: int = 0) -> PlanItem:
    return PlanItem(f"0_{n:08d}", Action.ARCHIVE, ObservedState.ORIGINAL, DesiredState.ARCHIVED,
                    ("archive",), "rule", size, "why", "f")


class Scripted:
    """A reconciler that plays back outcomes (or raises errors) per entry."""

    name = "scripted"

    def __init__(self, script: Callable[[str, int], Outcome]) -> None:
        self.script = script
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def run(self, entry_id: str, ctx: Context) -> Outcome:
        with self._lock:
            self.calls[entry_id] = self.calls.get(entry_id, 0) + 1
            n = self.calls[entry_id]
        return self.script(entry_id, n)


def _executor(tmp_path: Path, reconciler: Scripted, policy=None, *, should_stop=None,
              **timing) -> Executor:
    journal = Journal(tmp_path / "journal")
    ctx = Context(kaltura=None, archive=None, source=None, journal=journal,  # type: ignore[arg-type]
                  settings=Settings(partner_id=100), metrics=NullMetrics())
    hooks = Hooks(should_stop=should_stop) if should_stop is not None else Hooks()
    return Executor(ctx, policy or _policy(), backoffs=_state(tmp_path).backoffs,
                    timing=Timing(retry_base=0.001, retry_cap=0.01, **timing), hooks=hooks,
                    chain=lambda item: (reconciler,))


def _state(tmp_path: Path) -> StateStore:
    """The state store a new process would open (each call: a new connection to the file)."""
    return StateStore.open(tmp_path)


def _plan(*items: PlanItem) -> Plan:
    return Plan(items, 0, 100)


def test_a_transient_failure_is_retried_and_then_succeeds(tmp_path: Path) -> None:
    def script(entry_id: str, n: int) -> Outcome:
        if n < 3:
            raise TransientError("gateway")
        return Outcome.done()

    reconciler = Scripted(script)
    report = _executor(tmp_path, reconciler).run(_plan(_item(1)))
    assert [i.result for i in report.items] == ["done"] and report.ok
    assert reconciler.calls == {"0_00000001": 3}


def test_a_network_failure_its_adapter_retried_is_not_retried_again(tmp_path: Path) -> None:
    def script(entry_id: str, n: int) -> Outcome:
        raise NetworkError("Kaltura at http://k accepted the connection but did not answer")

    reconciler = Scripted(script)
    report = _executor(tmp_path, reconciler).run(_plan(_item(1)))
    assert [i.result for i in report.items] == ["failed"]
    assert reconciler.calls == {"0_00000001": 1}  # one level of retries: the adapter's


@pytest.mark.parametrize("source", list(Source))
def test_a_transient_error_an_adapter_raised_is_not_retried_again(tmp_path: Path,
                                                                   source: Source) -> None:
    # An error naming its source came through that adapter's one retry level already (S3's
    # botocore retries, the Kaltura session's loop ...): the entry backs off instead.
    def script(entry_id: str, n: int) -> Outcome:
        raise TransientError("SlowDown, try again later", source=source)

    reconciler = Scripted(script)
    report = _executor(tmp_path, reconciler).run(_plan(_item(1)))
    assert [i.result for i in report.items] == ["failed"]
    assert reconciler.calls == {"0_00000001": 1}
    backoff = _state(tmp_path).backoffs.get("0_00000001")
    assert backoff is not None and backoff.failures == 1


def test_deferrals_are_reported_one_line_per_reason(tmp_path: Path) -> None:
    reconciler = Scripted(lambda entry_id, n: Outcome.done())
    report = _executor(tmp_path, reconciler, _policy(count=2)).run(
        _plan(*(_item(n) for n in range(5))))
    assert report.count("deferred") == 3
    assert report.deferrals() == ["3 deferred to later cycles by limits.transitions_per_cycle"]


def test_a_permanent_failure_is_not_retried_and_its_backoff_outlives_the_run(
    tmp_path: Path,
) -> None:
    def script(entry_id: str, n: int) -> Outcome:
        raise IntegrityError("size differs")

    reconciler = Scripted(script)
    report = _executor(tmp_path, reconciler).run(_plan(_item(1)))
    assert [i.result for i in report.items] == ["failed"] and not report.ok
    assert reconciler.calls == {"0_00000001": 1}
    # The next run (a new process reading the journal) leaves the entry alone for a while.
    again = _executor(tmp_path, reconciler).run(_plan(_item(1)))
    assert [i.result for i in again.items] == ["deferred"]
    assert reconciler.calls == {"0_00000001": 1}


def test_a_failure_is_logged_with_its_entry_and_next_try(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def script(entry_id: str, n: int) -> Outcome:
        raise IntegrityError("size differs")

    with caplog.at_level("WARNING", logger="controller.runtime.executor"):
        _executor(tmp_path, Scripted(script)).run(_plan(_item(1)))
    [record] = [r for r in caplog.records if r.name == "controller.runtime.executor"]
    assert getattr(record, "entry_id", None) == "0_00000001"
    assert "archive failed (1 in a row; next try in 60s): size differs" in record.getMessage()


def test_success_resets_the_backoff(tmp_path: Path) -> None:
    _state(tmp_path).backoffs.set("0_00000001", 2, 0.0, "archive")  # expired backoff
    reconciler = Scripted(lambda entry_id, n: Outcome.done())
    _executor(tmp_path, reconciler).run(_plan(_item(1)))
    assert _state(tmp_path).backoffs.get("0_00000001") is None


def test_a_waiting_item_is_requeued_without_blocking_the_others(tmp_path: Path) -> None:
    def script(entry_id: str, n: int) -> Outcome:
        if entry_id == "0_00000001" and n < 4:
            return Outcome.waiting("converting", 0.01)
        return Outcome.done()

    reconciler = Scripted(script)
    report = _executor(tmp_path, reconciler).run(_plan(_item(1), _item(2), _item(3)))
    assert sorted(i.result for i in report.items) == ["done"] * 3
    assert reconciler.calls["0_00000001"] == 4


def test_an_item_still_waiting_at_the_deadline_is_reported_waiting(tmp_path: Path) -> None:
    reconciler = Scripted(lambda entry_id, n: Outcome.waiting("thawing", 0.01))
    report = _executor(tmp_path, reconciler, wait_timeout=0.05).run(_plan(_item(1)))
    assert [i.result for i in report.items] == ["waiting"] and report.ok


@pytest.mark.parametrize(("count", "size", "expected_done"),
                         [(2, "1TiB", 2), (100, "150B", 1), (100, "1TiB", 4)])
def test_per_cycle_limits_defer_the_rest(tmp_path: Path, count: int, size: str,
                                         expected_done: int) -> None:
    reconciler = Scripted(lambda entry_id, n: Outcome.done())
    executor = _executor(tmp_path, reconciler, policy=_policy(count, size))
    report = executor.run(_plan(*(_item(n, size=100) for n in range(4))))
    assert report.count("done") == expected_done
    assert report.count("deferred") == 4 - expected_done


def test_a_step_over_its_timeout_is_failed_and_the_run_goes_on(tmp_path: Path) -> None:
    release = threading.Event()

    def script(entry_id: str, n: int) -> Outcome:
        if entry_id == "0_00000001":
            release.wait(5)
        return Outcome.done()

    report = _executor(tmp_path, Scripted(script), step_timeout=0.2).run(
        _plan(_item(1), _item(2)))
    release.set()
    results = {i.entry_id: i.result for i in report.items}
    assert results == {"0_00000001": "failed", "0_00000002": "done"}


def test_a_stop_request_starts_nothing_new(tmp_path: Path) -> None:
    stop = threading.Event()

    def script(entry_id: str, n: int) -> Outcome:
        stop.set()
        time.sleep(0.05)
        return Outcome.done()

    policy = parse_policy(POLICY.format(count=100, bytes="1TiB").replace(
        "concurrency: 2", "concurrency: 1"), "policy.yaml")
    report = _executor(tmp_path, Scripted(script), policy=policy,
                       should_stop=stop.is_set).run(_plan(*(_item(n) for n in range(5))))
    assert report.count("done") == 1
    assert report.count("deferred") == 4
