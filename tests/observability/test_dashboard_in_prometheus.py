"""The dashboard and the alerts against a real Prometheus scraping a real `pixelfleet up` every
second, after real traffic: a sign-up, a task that succeeds (its webhook's receiver is gone,
so the webhook is given up), and a task that fails and is refunded. What `/metrics` serves then
passes `promtool check metrics`.

Every query of every panel (Grafana's `$__` intervals made concrete) is accepted by Prometheus;
the panels this traffic must move read more than 0, those it must not move read 0, and every
query of the dashboard is one of those or known to be empty here (no operator runs). Prometheus
loads the chart's rule file as it is and evaluates every rule without error: the webhook given
up fires at once, the failing tasks are pending (they must last 10 minutes), and nothing
finishing stays quiet."""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.api_helpers import image_bytes, truncated_jpeg
from tests.harness.embedded import RunningPlatform, pixelfleet_up
from tests.harness.ports import free_port
from tests.harness.prometheus import PrometheusServer, prometheus_server, promtool
from tests.live_api import sign_in, submit, wait_final
from tests.packaging.rendered import CHART

DASHBOARD = CHART / "dashboards" / "pixelfleet.json"
ALERT_RULES = CHART / "alerts" / "pixelfleet.yaml"
# Grafana's `$__rate_interval` and the like, as a dashboard a minute wide would have them.
GRAFANA_INTERVAL = "1m"

RESIZE_TO_WEBP = {"operations": [{"op": "resize", "width": 300}], "output": {"format": "webp"}}

Labels = dict[str, str]
Target = tuple[str, str]  # a panel's title, a query's refId

# The series (by some of their labels) that read more than 0 after the traffic.
MOVED: dict[Target, list[Labels]] = {
    ("Throughput: tasks per second", "A"): [{}],
    ("Throughput: tasks per second", "B"): [{"outcome": "succeeded"}, {"outcome": "failed"}],
    ("Failure rate", "A"): [{}],
    ("Task latency: waiting (queue to start)", "A"): [{}],
    ("Task latency: waiting (queue to start)", "B"): [{}],
    ("Task latency: waiting (queue to start)", "C"): [{}],
    ("Task latency: running (start to finish)", "A"): [{}],
    ("Task latency: running (start to finish)", "B"): [{}],
    ("Task latency: running (start to finish)", "C"): [{}],
    ("API latency p95 by route", "A"): [{"route": "/v1/tasks"}],
    ("Credits per hour", "A"): [{"kind": "task_debit"}, {"kind": "task_refund"}],
    ("Time per operation p95", "A"): [{"operation": "resize"}],
    ("Time per operation p95", "B"): [{"format": "webp"}],
    ("Image volume", "A"): [{}],
    ("Image volume", "B"): [{}],
    ("Image volume", "C"): [{"format": "webp"}],
    ("Webhook deliveries", "A"): [{"outcome": "failed"}],
}
# The series that are there and read 0: what this traffic did not do.
STILL: dict[Target, list[Labels]] = {
    ("Failure rate", "B"): [{}],  # no server error
    ("Backlog and workers", "A"): [{"queue": "embedded"}],  # every task was taken
    ("Payments per hour", "A"): [{"state": "paid"}, {"state": "failed"}],
    ("Webhook deliveries", "A"): [{"outcome": "delivered"}, {"outcome": "refused"}],
    ("Operator", "A"): [{"resource": "imagejobs", "handler": "create"}],
    ("Operator", "B"): [{"resource": "imagejobs", "handler": "create"}],
}
# No operator runs beside `pixelfleet up`: its autoscaler's gauges have no series.
EMPTY: set[Target] = {("Backlog and workers", "B"), ("Backlog and workers", "C")}


def _dashboard_queries() -> dict[Target, str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        (panel["title"], target["refId"]): re.sub(r"\$__\w+", GRAFANA_INTERVAL, target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    }


@dataclass
class Monitored:
    platform: RunningPlatform
    prometheus: PrometheusServer
    at: float  # when Prometheus had scraped all of the traffic: the time of every query


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    env = {
        # The callback goes to a loopback port nothing listens on, and is given up at once.
        "PIXELFLEET_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "PIXELFLEET_WEBHOOK_MAX_ATTEMPTS": "1",
    }
    with pixelfleet_up(tmp_path_factory.mktemp("dashboard") / "data", env=env) as running:
        yield running


@pytest.fixture(scope="module")
def monitored(
    platform: RunningPlatform, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Monitored]:
    target = platform.base_url.removeprefix("http://")
    directory = tmp_path_factory.mktemp("prometheus")
    with prometheus_server(directory, [target], rule_files=[ALERT_RULES]) as prometheus:
        # A scrape before the traffic, so that every counter's rise is seen from its 0.
        prometheus.wait_for('up{job="pixelfleet"}')
        _drive_traffic(platform, prometheus)
        yield Monitored(platform, prometheus, time.time())


def _drive_traffic(platform: RunningPlatform, prometheus: PrometheusServer) -> None:
    submissions = 'pixelfleet_http_request_duration_seconds_count{route="/v1/tasks",method="POST"}'
    with httpx.Client(base_url=platform.base_url, timeout=30) as http:
        headers = sign_in(http, f"watched-{uuid.uuid4().hex[:8]}@example.com")
        response = http.post(
            "/v1/tasks",
            headers=headers,
            files={"file": ("photo.jpg", image_bytes("JPEG", (800, 600)), "image/jpeg")},
            data={
                "pipeline": json.dumps(RESIZE_TO_WEBP),
                "callback_url": f"http://127.0.0.1:{free_port()}/hook",
            },
        )
        assert response.status_code == 202, response.text
        succeeding = response.json()
        # The route's series is born with its first request: scraped once before the second,
        # its rate shows.
        prometheus.wait_for(submissions)
        failing = submit(http, headers, RESIZE_TO_WEBP, truncated_jpeg())
        assert wait_final(http, headers, succeeding["id"])["status"] == "succeeded"
        assert wait_final(http, headers, failing["id"])["status"] == "failed"
    for scraped in (
        f"{submissions} == 2",
        'pixelfleet_tasks_finished_total{outcome="succeeded"}',
        'pixelfleet_tasks_finished_total{outcome="failed"}',
        'pixelfleet_credits_total{kind="task_refund"}',
        'pixelfleet_webhook_deliveries_total{outcome="failed"}',
    ):
        prometheus.wait_for(scraped)


def _read(monitored: Monitored, expr: str) -> list[tuple[Labels, float]]:
    return monitored.prometheus.query(expr, at=monitored.at)


def _values(found: list[tuple[Labels, float]], labels: Labels) -> list[float]:
    return [value for series, value in found if labels.items() <= series.items()]


def test_every_dashboard_query_is_expected_to_move_stay_or_be_empty() -> None:
    queries = set(_dashboard_queries())
    assert set(MOVED) | set(STILL) | EMPTY == queries


def test_prometheus_accepts_every_dashboard_query(monitored: Monitored) -> None:
    for target, expr in _dashboard_queries().items():
        found = _read(monitored, expr)  # raises on a query Prometheus refuses
        assert bool(found) == (target not in EMPTY), (target, expr, found)


def test_the_panels_the_traffic_moves_read_more_than_zero(monitored: Monitored) -> None:
    queries = _dashboard_queries()
    for target, wanted in MOVED.items():
        found = _read(monitored, queries[target])
        for labels in wanted:
            values = _values(found, labels)
            assert values, (target, labels, found)
            assert all(v > 0 and not math.isnan(v) for v in values), (target, labels, found)


def test_the_panels_the_traffic_does_not_move_read_zero(monitored: Monitored) -> None:
    queries = _dashboard_queries()
    for target, wanted in STILL.items():
        found = _read(monitored, queries[target])
        for labels in wanted:
            assert _values(found, labels) == [0], (target, labels, found)


def test_prometheus_evaluates_every_shipped_rule_and_the_given_up_webhook_fires(
    monitored: Monitored,
) -> None:
    prometheus = monitored.prometheus
    prometheus.wait_for('ALERTS{alertname="PixelFleetWebhooksGivenUp",alertstate="firing"}')
    rules = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
    assert len(rules) == ALERT_RULES.read_text().count("- alert: ")
    assert [(r["name"], r["health"], r["lastError"]) for r in rules if r["health"] != "ok"] == []
    active = prometheus.alerts()
    # Half the tasks failed: pending until that has lasted ten minutes.
    assert active["PixelFleetTasksFailing"] == "pending"
    assert active["PixelFleetWebhooksGivenUp"] == "firing"
    assert "PixelFleetNothingFinishes" not in active
    assert "PixelFleetServerErrors" not in active


def test_what_the_api_serves_passes_promtools_metric_lint(monitored: Monitored) -> None:
    exposition = httpx.get(f"{monitored.platform.base_url}/metrics", timeout=10).text
    assert "pixelfleet_tasks_finished_total" in exposition
    checked = promtool("check", "metrics", stdin=exposition)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout + checked.stderr == ""
