"""How Prometheus and Grafana see an installed release: scrape annotations that point at ports
the pods really serve, a ServiceMonitor (off by default) that finds every metrics endpoint, a
PrometheusRule (off by default) holding exactly the rules of the chart's rule file, and a
dashboard whose queries parse and name only metrics PixelFleet exports."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import pytest
import yaml

from pixelfleet.observability.metrics import ALL
from tests.harness.helm import Helm
from tests.packaging.rendered import (
    CHART,
    Rendered,
    pod_labels_of,
    pod_spec_of,
    selects,
)

DASHBOARD = CHART / "dashboards" / "pixelfleet.json"
ALERT_RULES = CHART / "alerts" / "pixelfleet.yaml"
MONITORING = CHART / "ci" / "monitoring-values.yaml"

# The series a histogram or counter exposes, by the name it was defined with.
_SUFFIXES = ("_bucket", "_count", "_sum", "_created")


def _exported_names() -> set[str]:
    names: set[str] = set()
    for metric in ALL:
        for family in metric.describe():
            base = family.name
            kind = family.type
            if kind == "counter":
                names |= {f"{base}_total", f"{base}_created"}
            elif kind == "histogram":
                names |= {base + suffix for suffix in _SUFFIXES}
            else:
                names.add(base)
    return names


def _selected_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (Grafana's $__ variables made concrete)."""
    parsed = promql_parser.parse(re.sub(r"\$__\w+", "5m", expr))
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)

    promql_parser.walk(parsed, visit)
    return found


def _dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> Rendered:
    return Rendered(helm.template(CHART))


@pytest.fixture(scope="module")
def monitored(helm: Helm) -> Rendered:
    return Rendered(helm.template(CHART, MONITORING))


def _ports(workload: dict[str, Any]) -> dict[int, str]:
    return {
        port["containerPort"]: port["name"]
        for container in pod_spec_of(workload)["containers"]
        for port in container.get("ports", [])
    }


def test_scrape_annotations_point_at_ports_the_pods_serve_metrics_on(rendered: Rendered) -> None:
    for role in ("api", "worker", "beat", "operator"):
        workload = rendered.one("Deployment", role)
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", role
        assert annotations["prometheus.io/path"] == "/metrics"
        port = int(annotations["prometheus.io/port"])
        assert port in _ports(workload), (role, port)
    # Each process is told the port its pod declares.
    worker_port = int(rendered.env("worker")["PIXELFLEET_WORKER_METRICS_PORT"]["value"])
    assert _ports(rendered.one("Deployment", "worker"))[worker_port] == "metrics"
    operator_port = int(rendered.env("operator")["PIXELFLEET_OPERATOR_METRICS_PORT"]["value"])
    assert _ports(rendered.one("Deployment", "operator"))[operator_port] == "metrics"
    control = rendered.container("beat", name="control")
    assert [p["name"] for p in control["ports"]] == ["metrics"]


def test_scrape_annotations_can_be_turned_off_and_a_roles_own_are_kept(helm: Helm) -> None:
    rendered = Rendered(
        helm.template(
            CHART,
            set_values={
                "metrics": {"podAnnotations": False},
                "api": {"podAnnotations": {"team": "images"}},
            },
        )
    )
    template = rendered.one("Deployment", "api")["spec"]["template"]["metadata"]
    assert template["annotations"] == {"team": "images"}
    assert "annotations" not in rendered.one("Deployment", "worker")["spec"]["template"]["metadata"]


def test_there_is_no_service_monitor_unless_asked_for(rendered: Rendered) -> None:
    assert not rendered.of_kind("ServiceMonitor")


def test_the_service_monitor_finds_every_metrics_endpoint(monitored: Rendered) -> None:
    [monitor] = monitored.of_kind("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    expressions = monitor["spec"]["selector"]["matchExpressions"]
    endpoint_ports = {e["port"] for e in monitor["spec"]["endpoints"]}
    assert {e["interval"] for e in monitor["spec"]["endpoints"]} == {"15s"}

    def chosen(service: dict[str, Any]) -> bool:
        labels = service["metadata"]["labels"]
        return all(labels.get(e["key"]) in e["values"] for e in expressions)

    services = [s for s in monitored.of_kind("Service") if chosen(s)]
    scraped_pods: set[str] = set()
    for service in services:
        ports = {p["name"] for p in service["spec"]["ports"]} & endpoint_ports
        assert ports, service["metadata"]["name"]
        for workload in monitored.of_kind("Deployment"):
            if selects(service["spec"]["selector"], pod_labels_of(workload)):
                scraped_pods.add(workload["metadata"]["labels"]["app.kubernetes.io/component"])
                for port in service["spec"]["ports"]:
                    assert port["targetPort"] in _ports(workload).values()
    assert scraped_pods == {"api", "worker", "beat", "operator"}
    # The databases are not PixelFleet's to scrape.
    assert not [s for s in services if "postgresql" in s["metadata"]["name"]]


def test_there_are_no_alerting_rules_unless_asked_for(rendered: Rendered) -> None:
    assert not rendered.of_kind("PrometheusRule")


def test_the_prometheus_rule_holds_the_rules_of_the_rule_file(monitored: Rendered) -> None:
    [rule] = monitored.of_kind("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == "pixelfleet"
    # The label the Prometheus Operator's ruleSelector of kube-prometheus-stack matches.
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["metadata"]["labels"]["app.kubernetes.io/instance"] == "pf"
    assert rule["spec"] == yaml.safe_load(ALERT_RULES.read_text())
    alerts = [r["alert"] for group in rule["spec"]["groups"] for r in group["rules"]]
    assert "PixelFleetNothingFinishes" in alerts
    assert "PixelFleetWebhooksGivenUp" in alerts


def test_the_prometheus_rule_takes_no_label_but_its_own_unless_given(helm: Helm) -> None:
    rendered = Rendered(helm.template(CHART, set_values={"metrics.prometheusRule.enabled": True}))
    [rule] = rendered.of_kind("PrometheusRule")
    assert "release" not in rule["metadata"]["labels"]
    assert not rendered.of_kind("ServiceMonitor")


def test_the_dashboard_ships_in_a_configmap_grafana_loads(rendered: Rendered) -> None:
    [configmap] = rendered.of_kind("ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["pixelfleet.json"]) == json.loads(DASHBOARD.read_text())


def test_every_dashboard_query_parses_and_names_only_metrics_that_exist() -> None:
    exported = _exported_names()
    queries = _dashboard_queries()
    assert queries
    read: set[str] = set()
    for expr in queries:
        names = _selected_names(expr)
        assert names, expr
        assert names <= exported, (expr, names - exported)
        read |= names
    # What ops need at a glance: throughput, latency percentiles, failures, backlog against
    # replicas, money.
    assert {
        "pixelfleet_tasks_finished_total",
        "pixelfleet_task_queue_seconds_bucket",
        "pixelfleet_task_run_seconds_bucket",
        "pixelfleet_queue_backlog",
        "pixelfleet_autoscaler_current_replicas",
        "pixelfleet_autoscaler_desired_replicas",
        "pixelfleet_credits_total",
        "pixelfleet_http_request_duration_seconds_bucket",
    } <= read


def test_the_metric_name_check_would_catch_a_misspelt_query() -> None:
    assert _selected_names("sum(rate(pixelfleet_task_finished_total[$__rate_interval]))") == {
        "pixelfleet_task_finished_total"
    }
    assert "pixelfleet_task_finished_total" not in _exported_names()
