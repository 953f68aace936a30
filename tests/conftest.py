"""Shared fixtures: the sandbox (Kaltura emulator + local S3) and the real clients that talk to it.

Session-scoped: ``sandbox`` (2,000 entries, seed 1), ``sandbox_env`` (its KEY=VALUE variables),
``kaltura_client`` (a real KalturaClient with an admin KS) and ``s3`` (a boto3 client to moto).
Tests that change global knobs of a sandbox (its clock, partner settings, faults, throttles, the
restore delay) take their own from ``make_sandbox(**kw)`` instead, and build clients for it with
``kaltura_client_for(sandbox)``; every sandbox a test makes is stopped when the test ends.

Every test gets its own state directory (``KARCHIVE_STATE_DIR``, inherited by the commands and
daemons it starts): journals and backoffs never leak from one test, or one run, to the next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from KalturaClient import KalturaClient

from sandbox.runner import Sandbox, admin_client


@pytest.fixture(autouse=True)
def state_dir(tmp_path_factory: pytest.TempPathFactory,
              monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("KARCHIVE_STATE_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(entries=2000, seed=1) as started:
        yield started


@pytest.fixture(scope="session")
def sandbox_env(sandbox: Sandbox) -> dict[str, str]:
    return sandbox.env()


@pytest.fixture(scope="session")
def kaltura_client(sandbox_env: dict[str, str]) -> KalturaClient:
    return admin_client(sandbox_env)


@pytest.fixture(scope="session")
def s3(sandbox: Sandbox) -> Any:
    return sandbox.s3_client()


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., Sandbox]]:
    made: list[Sandbox] = []

    def make(**kw: Any) -> Sandbox:
        started = Sandbox(**kw).start()
        made.append(started)
        return started

    yield make
    for started in reversed(made):
        started.stop()


@pytest.fixture(scope="session")
def kaltura_client_for() -> Callable[[Sandbox | dict[str, str]], KalturaClient]:
    """A real KalturaClient with an admin KS for a started sandbox (or its printed variables)."""
    return lambda target: admin_client(target if isinstance(target, dict) else target.env())
