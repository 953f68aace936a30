"""Fixtures for the daemon tests: ``start_daemon`` runs ``karchive run`` as a subprocess."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from daemon_process import DaemonProcess

# The observation tests' helpers (a policy for a sandbox, its call counters) are shared.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "planning"))


@pytest.fixture
def start_daemon() -> Iterator[Callable[..., DaemonProcess]]:
    """``start_daemon(policy_path, env, *flags)``; every daemon is stopped at the end."""
    started: list[DaemonProcess] = []

    def start(policy: Path, env: dict[str, str], *extra: str) -> DaemonProcess:
        daemon = DaemonProcess(policy, env, *extra)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop(signal.SIGKILL, timeout=30)
