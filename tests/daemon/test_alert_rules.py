"""deploy/prometheus/alerts.yaml: PromQL that Prometheus's own promtool parses and evaluates
over the series of alerts.test.yaml, a firing and a quiet case for every alert, and a runbook
section for each one."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yaml"
TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yaml"
RUNBOOK = ROOT / "docs" / "runbook.md"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: apt-get install --no-install-recommends prometheus"
    return found


def alerts() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def test_promtool_accepts_the_rules(promtool: str) -> None:
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_the_rules_fire_when_they_should_and_only_then(promtool: str) -> None:
    result = subprocess.run([promtool, "test", "rules", str(TESTS)], capture_output=True,
                            text=True, cwd=TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_case_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for group in yaml.safe_load(TESTS.read_text())["tests"]:
        for case in group["alert_rule_test"]:
            (firing if case["exp_alerts"] else quiet).add(case["alertname"])
    assert firing == set(alerts())
    assert quiet == set(alerts())


def test_every_alert_links_a_runbook_section_that_exists() -> None:
    text = RUNBOOK.read_text()
    headings = {re.sub(r"[^a-z0-9-]", "", line[3:].strip().lower().replace(" ", "-"))
                for line in text.splitlines() if line.startswith("## ")}
    for name, rule in alerts().items():
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor == name.lower()
        assert anchor in headings, f"docs/runbook.md has no section '## {name}'"
