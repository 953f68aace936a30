"""Throttling: ACTION_BLOCKED past a per-action limit in a fixed window that counts refused calls;
recovery when the window ends; paced writes."""

from __future__ import annotations

from typing import Any

import pytest
from KalturaClient import KalturaClient
from KalturaClient.exceptions import KalturaException

from sandbox.kaltura.exceptions import KalturaError
from sandbox.kaltura.server import KalturaSandbox
from sandbox.kaltura.throttle import PacedWriter, Throttle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_default_limit_is_35_deletes_per_10_seconds() -> None:
    clock = FakeClock()
    throttle = Throttle(clock)
    for _ in range(35):
        throttle.check("media", "delete")
    with pytest.raises(KalturaError) as caught:
        throttle.check("media", "delete")
    assert caught.value.code == "ACTION_BLOCKED"
    assert caught.value.message == 'Action "delete" in service "media" is blocked'
    assert caught.value.args_map == {"ACTION_NAME": "delete", "SERVICE_NAME": "media"}
    throttle.check("media", "list")  # unlimited
    throttle.check("baseEntry", "get")


def test_the_window_is_fixed_from_its_first_call() -> None:
    clock = FakeClock()
    throttle = Throttle(clock, {"media.delete": (2, 10)})
    throttle.check("media", "delete")  # opens the window at t=0
    clock.now += 9
    throttle.check("media", "delete")
    clock.now += 0.5
    with pytest.raises(KalturaError):
        throttle.check("media", "delete")
    clock.now += 0.6  # t=10.1: the window that opened at t=0 is over; a new one has room for 2
    throttle.check("media", "delete")
    throttle.check("media", "delete")
    with pytest.raises(KalturaError):
        throttle.check("media", "delete")


def test_refused_calls_are_counted_but_do_not_prolong_the_block() -> None:
    clock = FakeClock()
    throttle = Throttle(clock, {"media.delete": (2, 10)})
    throttle.check("media", "delete")
    throttle.check("media", "delete")
    for _ in range(5):
        clock.now += 1.5  # a client retrying every 1.5 s: each retry is refused and counted
        with pytest.raises(KalturaError):
            throttle.check("media", "delete")
    assert throttle.windows() == {"media.delete": (1000.0, 7)}
    clock.now += 2.5  # t=10: the counter expires with its window, however many were refused
    throttle.check("media", "delete")
    assert throttle.windows() == {"media.delete": (1010.0, 1)}


def test_limits_are_per_service_action_and_a_bad_one_changes_nothing() -> None:
    clock = FakeClock()
    throttle = Throttle(clock, {"media.delete": (1, 10), "flavorasset.list": (1, 1)})
    throttle.check("media", "delete")
    throttle.check("flavorAsset", "list")  # a separate counter
    with pytest.raises(KalturaError) as caught:
        throttle.check("flavorAsset", "list")
    assert caught.value.message == 'Action "list" in service "flavorasset" is blocked'
    with pytest.raises(ValueError):
        throttle.configure({"media.list": (5, 10), "media.get": (1, 0)})
    assert "media.list" not in throttle.limits()


@pytest.mark.parametrize("spec", [(-1, 10), (5, 0)])
def test_nonsense_limits_are_refused(spec: tuple[int, float]) -> None:
    with pytest.raises(ValueError):
        Throttle(FakeClock(), {"media.delete": spec})


def test_a_limit_can_be_removed() -> None:
    throttle = Throttle(FakeClock(), {"media.delete": (0, 10)})
    throttle.configure({"media.delete": None})
    throttle.check("media", "delete")
    assert throttle.limits() == {}


def test_deletes_over_http_are_blocked_then_recover_after_the_window(
    client: KalturaClient, emu: KalturaSandbox, admin: Any
) -> None:
    assert admin("POST", "throttle", {"media.delete": [2, 10]}) == (
        200, {"baseentry.delete": [35, 10.0], "media.delete": [2, 10.0]})
    with pytest.raises(KalturaException):  # entries absent: still counted as calls
        client.media.delete("0_missing")
    client.media.delete("0_entry000")
    with pytest.raises(KalturaException) as caught:
        client.media.delete("0_entry001")
    assert caught.value.code == "ACTION_BLOCKED"
    assert "0_entry001" in emu.backend.entries
    admin("POST", "clock", {"advance": 10})
    client.media.delete("0_entry001")
    assert "0_entry001" not in emu.backend.entries
    assert admin("GET", "throttle")[1]["media.delete"] == [2, 10.0]


# ----------------------------------------------------------------------------- bandwidth pacing


def test_paced_writes_never_run_ahead_of_the_rate() -> None:
    clock = FakeClock()
    sent: list[bytes] = []
    writer = PacedWriter(sent.append, 1000, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        writer.write(b"x" * 250)
    # 2,500 bytes at 1,000 B/s: the last chunk may start once 2,250 bytes are due, at 2.25 s.
    assert clock.now - 1000.0 == pytest.approx(2.25)
    assert writer.sent == 2500 and len(sent) == 10


def test_a_slow_consumer_is_not_slowed_further() -> None:
    clock = FakeClock()
    writer = PacedWriter(lambda _data: None, 1000, clock=clock, sleep=clock.sleep)
    writer.write(b"x" * 500)
    clock.now += 5  # the socket took long: the budget is already there
    writer.write(b"x" * 500)
    assert clock.slept == []


def test_no_cap_means_no_sleep_and_full_chunks() -> None:
    clock = FakeClock()
    writer = PacedWriter(lambda _data: None, None, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        writer.write(b"x" * 10_000)
    assert clock.slept == [] and writer.chunk_size(1 << 20) == 1 << 20


@pytest.mark.parametrize(("rate", "chunk"), [(10_000_000, 500_000), (1000, 1024),
                                             (1e12, 1 << 20)])
def test_capped_chunks_are_about_a_twentieth_of_a_second(rate: float, chunk: int) -> None:
    assert PacedWriter(lambda _d: None, rate).chunk_size(1 << 20) == chunk
