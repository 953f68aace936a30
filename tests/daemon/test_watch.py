"""The restore check against the sandbox: the real KalturaClient over HTTP, moto's S3, the
daemon's own cycle lock, lease, pipeline and executor, driven a check at a time.

The Princeton tool's placeholders of the seeded catalogue (both tags, the old placeholder's
size, a bare-id copy, most of them in GLACIER) are the placeholders a viewer plays here. Kaltura
calls are the emulator's own count (``GET /admin/stats``), taken around one check.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_observe_support import admin, aws_env, calls
from test_observe_support import write_policy as observe_policy

from controller.runtime.daemon import Daemon, DaemonSettings
from controller.runtime.state import StateStore
from controller.runtime.watch import OVERLAP
from sandbox.catalogue import LegacyKind
from sandbox.runner import Sandbox

DAY = 86_400
THAWS_FOR = 24 * 3600.0  # moto's restores outlast the test: a requested thaw stays "ongoing"


def write_policy(folder: Path, sb: Sandbox) -> Path:
    """The observation tests' policy (the Princeton placeholders proven by their size), with
    restore_on_play and no rules: a play is all that brings a placeholder back."""
    return observe_policy(folder, sb, rules="restore_on_play: true\n")


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}


def frozen_placeholders(sb: Sandbox) -> list[str]:
    """The catalogue's Princeton placeholders whose copy is in GLACIER, visible to a list, and
    not played since their swap (so nothing but a new play brings them back)."""
    assert sb.summary is not None and sb.backend is not None
    glacier = {o.key for o in sb.summary.objects if o.storage_class == "GLACIER"}
    found = []
    with sb.backend.lock:
        for entry_id in sb.summary.legacy_ids(LegacyKind.PLACEHOLDER):
            entry = sb.backend.entries[entry_id]
            swapped = max(f.updated_at for f in sb.backend.flavors_by_entry[entry_id]
                          if f.is_original)
            played_since = entry.last_played_at is not None and entry.last_played_at >= swapped
            if entry_id in glacier and entry.status == 2 and not played_since \
                    and entry.moderation_status not in (1, 3) and entry.display_in_search >= 0:
                found.append(entry_id)
    assert len(found) >= 2, "the seeded catalogue has Princeton placeholders in GLACIER"
    return found


def thaw_requested(sb: Sandbox, entry_id: str) -> bool:
    head = sb.s3_client().head_object(Bucket=sb.bucket, Key=entry_id)
    return 'ongoing-request="true"' in head.get("Restore", "")


def kaltura_now(sb: Sandbox) -> int:
    return int(admin(sb, "clock")["now"])


def daemon_for(policy: Path, state: Path) -> Daemon:
    return Daemon(DaemonSettings(policy, state_dir=state, lease_duration=600.0))


def marked(sb: Sandbox, folder: Path) -> tuple[Path, Path]:
    """(the policy, the state directory) with a mark recorded at Kaltura's "now", two days on
    from the catalogue's seeded plays: none of them is inside the first window."""
    state = folder / "state"
    sb.backend.clock.advance(2 * DAY)  # type: ignore[union-attr]
    with StateStore.open(state) as store:
        store.watch_mark.set(kaltura_now(sb))
    return write_policy(folder, sb), state


def sample(daemon: Daemon, name: str, **labels: str) -> float:
    return daemon.metrics.value(name, labels) or 0.0


@pytest.fixture
def big(make_sandbox: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    sb = make_sandbox(entries=20_000, seed=1, restore_delay=THAWS_FOR)
    aws_env(monkeypatch, sb)
    return sb


def test_a_played_placeholder_is_thawed_by_one_check_of_three_kaltura_calls_at_20000(
        big: Sandbox, tmp_path: Path) -> None:
    policy, state = marked(big, tmp_path)
    daemon = daemon_for(policy, state)
    try:
        assert daemon.restore_check()  # the session starts (once per process); nothing played
        assert sample(daemon, "karchive_restore_check_entries_total", source="played") == 0
        entry_id = frozen_placeholders(big)[0]
        assert not thaw_requested(big, entry_id)
        admin(big, "play", {"entryId": entry_id})

        before = calls(big)
        assert daemon.restore_check()
        spent = delta(before, calls(big))
        # Three HTTP requests: a multirequest {system.getTime, media.list} (the played
        # placeholders, and Kaltura's clock for the next mark), media.list (idIn: the pipeline's
        # walk) and a multirequest {flavorAsset.list}. The emulator counts each sub-call too.
        assert spent == {"multirequest": 2, "system.gettime": 1, "media.list": 2,
                         "flavorasset.list": 1}, spent
        assert thaw_requested(big, entry_id)
        assert sample(daemon, "karchive_transitions_total", action="thaw", result="done") == 1
        assert sample(daemon, "karchive_restore_check_entries_total", source="played") == 1
        assert sample(daemon, "karchive_restore_checks_total", result="ok") == 2
        assert daemon.status.cycles == 0  # no full cycle ran: 20,000 entries never walked
        # Kaltura's clock, not this machine's, is the new mark.
        with StateStore.open(state) as store:
            mark = store.watch_mark.get()
        assert mark is not None and abs(mark - kaltura_now(big)) <= 5
        assert daemon.status.in_flight == 1  # the next check follows the thaw by id
    finally:
        daemon.close()


@pytest.fixture
def small(make_sandbox: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    sb = make_sandbox(entries=1000, seed=3, restore_delay=THAWS_FOR, max_size=256 << 10,
                      conversion_delay=0.0)
    aws_env(monkeypatch, sb)
    return sb


def test_a_play_while_the_daemon_is_down_is_caught_after_the_restart(
        small: Sandbox, tmp_path: Path) -> None:
    policy, state = write_policy(tmp_path, small), tmp_path / "state"
    first = daemon_for(policy, state)
    try:
        # No mark yet: the check runs a full cycle instead, which records Kaltura's clock.
        before = kaltura_now(small)
        assert first.restore_check()
        assert first.status.cycles == 1
    finally:
        first.close()
    with StateStore.open(state) as store:
        mark = store.watch_mark.get()
    assert mark is not None and before <= mark <= kaltura_now(small)

    # Down for an hour; a viewer plays a placeholder meanwhile.
    small.backend.clock.advance(3600)  # type: ignore[union-attr]
    entry_id = frozen_placeholders(small)[0]
    assert not thaw_requested(small, entry_id)
    admin(small, "play", {"entryId": entry_id})

    second = daemon_for(policy, state)
    try:
        before_calls = calls(small)
        assert second.restore_check()
        spent = delta(before_calls, calls(small))
        assert thaw_requested(small, entry_id)
        assert second.status.cycles == 0  # from the recorded mark, not a full cycle
        assert spent.get("session.start") == 1 and spent["media.list"] <= 2, spent
        assert sample(second, "karchive_restore_check_entries_total", source="played") >= 1
    finally:
        second.close()


def test_a_play_older_than_the_window_is_not_asked_about_or_thawed_again(
        small: Sandbox, tmp_path: Path) -> None:
    policy, state = marked(small, tmp_path)
    entry_id = frozen_placeholders(small)[0]
    admin(small, "play", {"entryId": entry_id})
    daemon = daemon_for(policy, state)
    try:
        assert daemon.restore_check()
        assert thaw_requested(small, entry_id)
        # A day and more later the play is still inside the next window (it starts one overlap
        # before the last mark): found again, seen thawing, not thawed twice.
        small.backend.clock.advance(OVERLAP + 3600)  # type: ignore[union-attr]
        assert daemon.restore_check()
        assert sample(daemon, "karchive_restore_check_entries_total", source="played") == 2
    finally:
        daemon.close()
    # A restart forgets what is in flight; the play is now older than the window.
    restarted = daemon_for(policy, state)
    try:
        before = calls(small)
        assert restarted.restore_check()
        spent = delta(before, calls(small))
        assert sample(restarted, "karchive_restore_check_entries_total", source="played") == 0
        assert spent == {"session.start": 1, "multirequest": 1, "system.gettime": 1,
                         "media.list": 1}, spent
    finally:
        restarted.close()
    thaws = sample(daemon, "karchive_transitions_total", action="thaw", result="done")
    again = sample(restarted, "karchive_transitions_total", action="thaw", result="done")
    assert (thaws, again) == (1, 0)
    assert sample(daemon, "karchive_s3_calls_total", operation="RestoreObject", outcome="ok") == 1
