"""The HTTP face over loopback: /metrics text, probe status codes and JSON bodies."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from controller.runtime.http import MetricsServer
from controller.runtime.metrics import Metrics


class Health:
    def __init__(self) -> None:
        self.live: tuple[bool, dict[str, Any]] = (True, {"heartbeat_age_seconds": 1.0})
        self.ready: tuple[bool, dict[str, Any]] = (False, {"policy": "not loaded"})

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        return self.live

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        return self.ready


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


@pytest.fixture
def served() -> Any:
    metrics, health = Metrics(), Health()
    with MetricsServer(metrics, health) as server:
        yield server, metrics, health


def test_metrics_are_served_in_the_prometheus_text_format(served: Any) -> None:
    server, metrics, _ = served
    metrics.transition("archive", "ok")
    status, content_type, body = get(server.url + "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    assert 'karchive_transitions_total{action="archive",result="ok"} 1.0' in body


@pytest.mark.parametrize(("ok", "status"), [(True, 200), (False, 503)])
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_200_or_503_with_their_checks(
    served: Any, path: str, ok: bool, status: int
) -> None:
    server, _, health = served
    answer = (ok, {"first_observation": ok})
    health.live = health.ready = answer
    code, content_type, body = get(server.url + path)
    assert code == status and content_type == "application/json"
    assert json.loads(body) == {"ok": ok, "checks": {"first_observation": ok}}


def test_a_probe_that_raises_answers_500_instead_of_hanging(served: Any) -> None:
    server, _, health = served
    health.liveness = lambda: 1 / 0
    assert get(server.url + "/healthz")[0] == 500
    assert get(server.url + "/metrics")[0] == 200  # the server survived


def test_unknown_paths_are_404(served: Any) -> None:
    server, _, _ = served
    assert get(server.url + "/nope")[0] == 404
