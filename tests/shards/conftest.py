"""Fixtures of the shard tests: real ``karchive run`` processes (the daemon tests' harness) on
worlds of the apply tests (a sandbox of their own, its truth read from the emulator's records);
both folders are put on the import path here."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "daemon"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "apply"))

from apply_world import PLACEHOLDER, World  # noqa: E402 - needs the path set above
from daemon_process import DaemonProcess  # noqa: E402

from sandbox.runner import Sandbox  # noqa: E402


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    """The daemons a test started (append them); every one is killed at the end."""
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.stop(signal.SIGKILL, timeout=30)


@pytest.fixture
def world_of(make_sandbox: Callable[..., Sandbox], tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Callable[..., World]:
    """``world_of(name, **sandbox_options)``: a sandbox and a folder for its policy."""
    monkeypatch.chdir(tmp_path)

    def make(name: str, **options: Any) -> World:
        started = make_sandbox(**options)
        for key, value in started.env().items():
            if key.startswith("AWS_"):
                monkeypatch.setenv(key, value)
        folder = tmp_path / name
        folder.mkdir()
        (folder / "placeholder.mp4").write_bytes(PLACEHOLDER)
        return World(started, folder, folder / "policy.yaml", folder / "journal",
                     started.s3_client())

    return make
