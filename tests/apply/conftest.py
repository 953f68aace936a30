"""Fixtures of the apply tests: ``make_world(**sandbox_options)`` (see apply_world.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from apply_world import PLACEHOLDER, MiB, World

from sandbox.runner import Sandbox


@pytest.fixture
def make_world(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., World]]:
    def make(**kw: Any) -> World:
        options = {"entries": 60, "seed": 11, "max_size": 24 * MiB, "conversion_delay": 0.2}
        options.update(kw)
        started = make_sandbox(**options)
        for key, value in started.env().items():
            if key.startswith("AWS_"):
                monkeypatch.setenv(key, value)
        (tmp_path / "placeholder.mp4").write_bytes(PLACEHOLDER)
        return World(started, tmp_path, tmp_path / "policy.yaml", tmp_path / "journal",
                     started.s3_client())

    monkeypatch.chdir(tmp_path)
    yield make
    os.environ.pop("KARCHIVE_TEST", None)
