"""``karchive run`` as a subprocess, read over real HTTP (the daemon tests' harness).

:class:`DaemonProcess` starts the daemon with JSON logs on stderr, learns the metrics URL from
its "serving" log line, and offers the probes and metric samples; :func:`wait_for` polls a
condition with a bounded timeout (no test asserts on wall-clock time).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 60.0, what: str = "condition") -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class DaemonProcess:
    """One ``karchive run`` subprocess and what it logged."""

    def __init__(self, policy: Path, env: dict[str, str], *extra: str) -> None:
        self.args = [sys.executable, "-m", "controller.cli", "run", "-f", str(policy),
                     "--metrics-port", "0", "--log-format", "json", *extra]
        self.env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
        self.logs: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.proc = subprocess.Popen(self.args, env=self.env, cwd=policy.parent,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._url: str | None = None

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            with contextlib.suppress(ValueError):
                self.logs.append(json.loads(line))

    @property
    def url(self) -> str:
        if self._url is None:
            def served() -> str | None:
                if self.proc.poll() is not None:
                    raise AssertionError("daemon exited early:\n" + "".join(self.raw[-30:]))
                return next((r["url"] for r in list(self.logs) if "url" in r), None)

            self._url = wait_for(served, 60, "the metrics server")
        return self._url

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def probe(self, path: str) -> tuple[int, dict[str, Any]]:
        status, body = self.get(path)
        return status, json.loads(body)

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, text = self.get("/metrics")
        assert status == 200
        found = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return found

    def metric(self, name: str, **labels: str) -> float | None:
        return self.samples().get((name, tuple(sorted(labels.items()))))

    def metric_sum(self, name: str, **labels: str) -> float:
        """Sum over every sample of ``name`` whose labels include ``labels``."""
        return sum(v for (n, ls), v in self.samples().items()
                   if n == name and set(labels.items()) <= set(ls))

    def logged(self, message_part: str) -> list[dict[str, Any]]:
        return [r for r in list(self.logs) if message_part in r.get("message", "")]

    def cycles(self) -> float:
        return self.metric_sum("karchive_cycles_total")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=10)
        return code
