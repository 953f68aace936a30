"""deploy/: the manifests parse, point at what the daemon really serves and exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.runtime.metrics import Metrics
from policies.loader import parse_policy

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC_RE = re.compile(r"\bkarchive_[a-z0-9_]+")
SUFFIXES = ("_bucket", "_count", "_sum")


def exported_names() -> set[str]:
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.update(sample.name for sample in family.samples)
        # A labelled family with no child yet has no samples: name it from the family.
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def k8s_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def of_kind(kind: str) -> dict[str, Any]:
    return next(d for d in k8s_documents() if d["kind"] == kind)


@pytest.mark.parametrize(
    "path", ["prometheus/alerts.yaml", "grafana/karchive-dashboard.json"]
)
def test_alerts_and_dashboard_name_only_metrics_the_daemon_exports(path: str) -> None:
    text = (DEPLOY / path).read_text()
    named = set(METRIC_RE.findall(text))
    assert named, "no metric referenced"
    exported = exported_names()
    unknown = {n for n in named if n not in exported}
    assert not unknown


def test_the_alert_rules_cover_a_stalled_loop_unhealthy_entries_and_repeated_failures() -> None:
    groups = yaml.safe_load((DEPLOY / "prometheus/alerts.yaml").read_text())["groups"]
    alerts = {rule["alert"]: rule for group in groups for rule in group["rules"]}
    assert {"KarchiveLoopStalled", "KarchiveUnhealthyEntries", "KarchiveRepeatedFailures"} <= set(
        alerts
    )
    for rule in alerts.values():
        assert rule["annotations"]["summary"]


def test_the_dashboard_is_grafana_json_with_prometheus_targets() -> None:
    dashboard = json.loads((DEPLOY / "grafana/karchive-dashboard.json").read_text())
    assert dashboard["uid"] == "karchive" and dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["targets"] and all(t["expr"] for t in panel["targets"])


def test_the_statefulset_probes_and_scrape_annotations_use_the_metrics_port() -> None:
    deployment = of_kind("StatefulSet")
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    port = container["ports"][0]["containerPort"]
    env = {e["name"]: e for e in container["env"]}
    assert env["KARCHIVE_METRICS_PORT"]["value"] == str(port)
    assert env["KARCHIVE_METRICS_ADDRESS"]["value"] == "0.0.0.0"
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_secrets_reach_the_pod_only_by_reference() -> None:
    container = of_kind("StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    for name in ("KALTURA_ADMIN_SECRET", "AWS_SECRET_ACCESS_KEY"):
        assert "value" not in env[name] and "secretKeyRef" in env[name]["valueFrom"]
    task = json.loads((DEPLOY / "ecs/task-definition.json").read_text())
    definition = task["containerDefinitions"][0]
    assert "KALTURA_ADMIN_SECRET" in {s["name"] for s in definition["secrets"]}
    assert not any("SECRET" in e["name"] for e in definition["environment"])


def test_the_configmap_policy_validates_with_the_statefulset_environment() -> None:
    container = of_kind("StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    environ = {e["name"]: e.get("value", "redacted-secret") for e in container["env"]
               if "fieldRef" not in e.get("valueFrom", {})}
    text = of_kind("ConfigMap")["data"]["policy.yaml"]
    policy = parse_policy(text, "configmap:policy.yaml", environ=environ)
    assert policy.storage.bucket == environ["KARCHIVE_BUCKET"]
    assert policy.schedule.cron is not None


def test_the_ecs_health_check_asks_healthz_with_python() -> None:
    task = json.loads((DEPLOY / "ecs/task-definition.json").read_text())
    definition = task["containerDefinitions"][0]
    command = definition["healthCheck"]["command"]
    assert command[:2] == ["CMD", "python"] and "/healthz" in command[-1]
    compile(command[-1], "healthcheck", "exec")
    assert definition["portMappings"][0]["containerPort"] == 9464


def test_the_state_directory_is_a_volume_that_outlives_the_pod() -> None:
    statefulset = of_kind("StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mount = next(m for m in container["volumeMounts"]
                 if m["mountPath"] == env["KARCHIVE_STATE_DIR"])
    # One claim per pod (per shard), from the StatefulSet's template: never an emptyDir.
    assert mount["name"] not in {v["name"] for v in pod["volumes"]}
    claim = next(c for c in statefulset["spec"]["volumeClaimTemplates"]
                 if c["metadata"]["name"] == mount["name"])
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    definition = json.loads((DEPLOY / "ecs/task-definition.json").read_text())
    container_ecs = definition["containerDefinitions"][0]
    ecs_env = {e["name"]: e["value"] for e in container_ecs["environment"]}
    assert ecs_env["KARCHIVE_STATE_DIR"] in {m["containerPath"]
                                              for m in container_ecs["mountPoints"]}
    dockerfile = (DEPLOY.parent / "Dockerfile").read_text()
    assert "KARCHIVE_STATE_DIR=/var/lib/karchive" in dockerfile
    assert "VOLUME /var/lib/karchive" in dockerfile


def test_the_kustomization_lists_the_manifests_and_the_servicemonitor_names_the_job() -> None:
    kustomization = of_kind("Kustomization")
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in (DEPLOY / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")
    monitor = of_kind("ServiceMonitor")
    service = of_kind("Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"][
        "labels"].items()
    # The Prometheus job is the Service's label value: the one the alert rules select.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "karchive"
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert 'job="karchive"' in (DEPLOY / "prometheus/alerts.yaml").read_text()


def test_the_example_policy_acts_on_its_first_run_on_the_sandbox(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controller.compose import compose
    from controller.runtime.executor import guard
    from controller.runtime.pipeline import Pipeline
    from policies.plan import Action

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(name, sandbox.env()[name])
    text = of_kind("ConfigMap")["data"]["policy.yaml"]
    policy = parse_policy(text, "configmap:policy.yaml", environ=sandbox.env())
    policy = policy.model_copy(update={"storage": policy.storage.model_copy(
        update={"endpoint_url": sandbox.env()["AWS_ENDPOINT_URL"]})})
    plan = Pipeline(compose(policy)).run().plan
    assert plan.count(Action.REPLACE) > 0
    assert guard(plan, policy) is None  # the guard lets it through: the first run acts
