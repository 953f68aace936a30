"""``karchive sandbox …`` (``python -m sandbox``): up prints the variables and serves until a
signal; play, fault, throttle and clock drive a running sandbox through its admin endpoints."""

from __future__ import annotations

import os
import queue
import signal
import smtplib
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from KalturaClient.exceptions import KalturaException
from KalturaClient.Plugins.Core import KalturaFilterPager, KalturaMediaEntryFilter

from sandbox.cli import main
from sandbox.runner import Sandbox, placeholder_video, read_export, shell_exports

ROOT = Path(__file__).resolve().parents[2]
ENV_KEYS = {
    "KALTURA_SERVICE_URL",
    "KALTURA_PARTNER_ID",
    "KALTURA_ADMIN_SECRET",
    "KALTURA_USER_ID",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "KARCHIVE_BUCKET",
    "KARCHIVE_PLACEHOLDER",
    "KARCHIVE_SMTP_HOST",
    "KARCHIVE_SMTP_PORT",
    "KARCHIVE_MAIL_DIR",
}


class UpProcess:
    """``python -m sandbox up …`` as a child process, its stdout read line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "up", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def env(self, timeout: float = 120) -> dict[str, str]:
        env: dict[str, str] = {}
        while not env.keys() >= ENV_KEYS:
            line = self.lines.get(timeout=timeout)
            if line is None:
                raise AssertionError(f"up exited early: {self.proc.stderr.read()}")  # type: ignore[union-attr]
            exported = read_export(line)
            assert exported is not None, f"not an export line: {line!r}"
            env[exported[0]] = exported[1]
        return env

    def stop(self, sig: signal.Signals) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)


@pytest.fixture
def up() -> Iterator[Callable[..., UpProcess]]:
    started: list[UpProcess] = []

    def start(*args: str) -> UpProcess:
        started.append(UpProcess(*args))
        return started[-1]

    yield start
    for child in started:
        if child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait(timeout=30)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_up_prints_the_variables_serves_both_apis_and_exits_0_on_a_signal(
    up: Callable[..., UpProcess], kaltura_client_for: Any, sig: signal.Signals
) -> None:
    child = up("--entries", "50", "--seed", "3")
    env = child.env()
    assert env.keys() == ENV_KEYS

    client = kaltura_client_for(env)
    listed = client.media.list(KalturaMediaEntryFilter(), KalturaFilterPager(pageSize=1))
    assert listed.totalCount > 0
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    s3.head_bucket(Bucket=env["KARCHIVE_BUCKET"])
    assert Path(env["KARCHIVE_PLACEHOLDER"]).read_bytes() == placeholder_video()
    with smtplib.SMTP(env["KARCHIVE_SMTP_HOST"], int(env["KARCHIVE_SMTP_PORT"]), timeout=10) as mta:
        mta.sendmail("karchive@example.edu", ["owner@example.edu"], b"Subject: hello\r\n\r\nhi\r\n")
    assert [p.name for p in Path(env["KARCHIVE_MAIL_DIR"]).glob("*.eml")] == ["000001.eml"]
    assert child.proc.poll() is None  # still serving
    assert child.stop(sig) == 0


def test_up_prints_export_lines_a_shell_can_source(
    up: Callable[..., UpProcess], tmp_path: Path
) -> None:
    child = up("--entries", "20", "--seed", "3")
    env = child.env()
    exports = tmp_path / "sandbox.env"
    exports.write_text(shell_exports(env))
    shown = subprocess.run(
        ["bash", "-c", f'source {exports} && echo "$KALTURA_SERVICE_URL|$KARCHIVE_PLACEHOLDER"'],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()
    assert shown == f"{env['KALTURA_SERVICE_URL']}|{env['KARCHIVE_PLACEHOLDER']}"
    assert child.stop(signal.SIGTERM) == 0


def test_export_lines_quote_what_a_shell_would_split() -> None:
    env = {"A": "plain", "B": "two words", "C": "it's $HOME; `x`", "D": ""}
    text = shell_exports(env)
    assert text.startswith("export A=plain\n")
    assert dict(filter(None, map(read_export, text.splitlines()))) == env
    assert read_export("sandbox ready") is None
    shown = subprocess.run(["bash", "-c", text + 'printf "%s|%s|%s" "$B" "$C" "$D"'],
                           capture_output=True, text=True, timeout=30, check=True).stdout
    assert shown == "two words|it's $HOME; `x`|"


def test_up_with_a_state_file_saves_it_on_exit(
    up: Callable[..., UpProcess], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    child = up("--entries", "120", "--state", str(state))
    child.env()
    assert child.stop(signal.SIGTERM) == 0
    assert state.exists()
    assert (tmp_path / "state.json.s3" / "index.json").exists()


def test_up_with_a_state_file_that_is_not_a_snapshot_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json", encoding="utf-8")
    assert main(["up", "--entries", "10", "--state", str(state)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "delete it to start from a fresh catalogue" in err


@pytest.fixture
def running(make_sandbox: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    sandbox = make_sandbox(entries=30, seed=2)
    monkeypatch.setenv("KALTURA_SERVICE_URL", sandbox.env()["KALTURA_SERVICE_URL"])
    return sandbox


def test_play_records_a_play_and_prints_the_new_counts(
    running: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = next(e for e in running.backend.all_entries() if e.status == 2)  # type: ignore[union-attr]
    before = entry.plays
    assert main(["play", entry.id]) == 0
    assert entry.plays == before + 1
    assert entry.last_played_at is not None
    assert capsys.readouterr().out.startswith(f"{entry.id}: plays={before + 1} ")


def test_play_of_an_unknown_entry_fails_with_one_line(
    running: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["play", "0_missing1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'Entry id "0_missing1" not found' in err


def test_play_without_the_sandbox_variables_says_what_to_export(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KALTURA_SERVICE_URL", raising=False)
    assert main(["play", "0_whatever"]) == 2
    assert "KALTURA_SERVICE_URL is not set" in capsys.readouterr().err


def test_play_against_a_stopped_sandbox_says_it_cannot_reach_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KALTURA_SERVICE_URL", "http://127.0.0.1:9")
    assert main(["play", "0_whatever"]) == 1
    assert "cannot reach the sandbox" in capsys.readouterr().err


def test_fault_makes_the_next_call_fail_with_the_given_api_error(
    running: Sandbox, kaltura_client_for: Any
) -> None:
    client = kaltura_client_for(running)
    assert main(["fault", "media.list", "api_error", "--code", "BOOM", "--message", "no"]) == 0
    with pytest.raises(KalturaException) as exc:
        client.media.list(KalturaMediaEntryFilter(), KalturaFilterPager(pageSize=1))
    assert exc.value.code == "BOOM"
    assert client.media.list(KalturaMediaEntryFilter(), KalturaFilterPager(pageSize=1))


def test_throttle_sets_a_limit_that_blocks_and_lists_it(
    running: Sandbox, kaltura_client_for: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    client = kaltura_client_for(running)
    assert main(["throttle", "media.list", "1", "10"]) == 0
    client.media.list(KalturaMediaEntryFilter(), KalturaFilterPager(pageSize=1))
    with pytest.raises(KalturaException) as exc:
        client.media.list(KalturaMediaEntryFilter(), KalturaFilterPager(pageSize=1))
    assert exc.value.code == "ACTION_BLOCKED"
    capsys.readouterr()
    assert main(["throttle"]) == 0
    assert "media.list\t1 per 10 s" in capsys.readouterr().out


def test_fault_and_throttle_reject_a_target_that_is_not_service_dot_action(
    running: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fault", "medialist", "empty"]) == 2
    assert main(["throttle", "medialist", "3"]) == 2
    assert "is not SERVICE.ACTION" in capsys.readouterr().err


def test_clock_moves_the_emulator_clock_forward(running: Sandbox) -> None:
    backend = running.backend
    assert backend is not None
    before = backend.clock.now()
    assert main(["clock", "3600"]) == 0
    assert backend.clock.now() >= before + 3600


def test_user_adds_a_user_and_changes_only_the_fields_given(
    running: Sandbox, kaltura_client_for: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["user", "jdoe", "--first-name", "Jane", "--last-name", "Doe",
                 "--email", "jane.doe@example.edu"]) == 0
    assert capsys.readouterr().out == "jdoe: Jane Doe <jane.doe@example.edu> active\n"
    assert main(["user", "jdoe", "--status", "blocked", "--email", ""]) == 0
    user = kaltura_client_for(running).user.get("jdoe")
    assert (user.fullName, user.email, user.status.getValue()) == ("Jane Doe", "", 0)


def test_the_module_entry_point_shows_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert result.returncode == 0
    assert "up" in result.stdout and "play" in result.stdout
