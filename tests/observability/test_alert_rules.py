"""The alerting rules, as Prometheus' own promtool reads them: the rule file is valid, every alert
reads only metrics PixelFleet exports and says how bad it is and where its runbook is, and
every alert fires on the series PixelFleet really exports and stays quiet otherwise
(`alerts.test.yaml`, run by `promtool test rules`)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from tests.docs.guides import anchors, exported_metric_names, guide_text
from tests.harness.prometheus import promtool
from tests.packaging.rendered import CHART

RULES = CHART / "alerts" / "pixelfleet.yaml"
UNIT_TESTS = Path(__file__).with_name("alerts.test.yaml")
SEVERITIES = {"warning", "critical"}


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _selected_names(expr: str) -> set[str]:
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def test_promtool_finds_the_rule_file_valid() -> None:
    checked = promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in checked.stdout


def test_every_alert_reads_only_exported_metrics_and_says_how_bad_and_where_to_look() -> None:
    alerts = _alerts()
    names = [alert["alert"] for alert in alerts]
    assert len(set(names)) == len(names) >= 10
    runbooks = anchors(guide_text("operations.md"))
    read: set[str] = set()
    for alert in alerts:
        selected = _selected_names(alert["expr"])
        assert selected, alert["alert"]
        assert selected <= exported_metric_names(), (alert["alert"], selected)
        read |= selected
        assert alert["labels"]["severity"] in SEVERITIES, alert["alert"]
        annotations = alert["annotations"]
        assert annotations["summary"], alert["alert"]
        assert annotations["description"], alert["alert"]
        page, _, anchor = annotations["runbook"].partition("#")
        assert page == "docs/operations.md"
        assert anchor in runbooks, alert["alert"]
    # Failures, stalls, waiting, backlog, capacity, the API, the operator, webhooks and money.
    assert {
        "pixelfleet_tasks_finished_total",
        "pixelfleet_tasks_submitted_total",
        "pixelfleet_task_queue_seconds_bucket",
        "pixelfleet_queue_backlog",
        "pixelfleet_autoscaler_desired_replicas",
        "pixelfleet_http_request_duration_seconds_count",
        "pixelfleet_http_request_duration_seconds_bucket",
        "pixelfleet_operator_errors_total",
        "pixelfleet_webhook_deliveries_total",
        "pixelfleet_credits_total",
        "pixelfleet_payments_total",
    } <= read


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    cases = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {alert["alert"] for alert in _alerts()}
    assert fired == names
    assert quiet == names


def test_every_alert_fires_on_real_series_and_stays_quiet_otherwise() -> None:
    tested = promtool("test", "rules", UNIT_TESTS)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_unit_tests_catch_an_alert_that_cannot_fire(tmp_path: Path) -> None:
    """'Nothing finishes' as it was first written: no task finishing at all. Users cancel tasks
    that wait and the recovery job fails those of lost workers, so tasks do finish while no
    worker runs; and `and ... == 0` over a finished series that is not there is empty."""
    rules = RULES.read_text()
    fixed = '  unless sum(rate(pixelfleet_tasks_finished_total{outcome="succeeded"}[15m])) > 0'
    assert fixed in rules
    (tmp_path / RULES.name).write_text(
        rules.replace(fixed, "  and sum(rate(pixelfleet_tasks_finished_total[15m])) == 0")
    )
    unit_tests = tmp_path / "tests" / "observability" / UNIT_TESTS.name
    unit_tests.parent.mkdir(parents=True)
    shutil.copy(UNIT_TESTS, unit_tests)
    unit_tests.write_text(
        unit_tests.read_text().replace("../../charts/pixelfleet/alerts/", "../../")
    )

    tested = promtool("test", "rules", unit_tests)
    assert tested.returncode != 0
    failed = re.findall(r"name: (.+),\n\s+alertname: (\w+)", tested.stdout + tested.stderr)
    assert failed == [
        (
            "the workers are gone while tasks are accepted, cancelled and recovered",
            "PixelFleetNothingFinishes",
        ),
        ("tasks are accepted and no finished series exists", "PixelFleetNothingFinishes"),
    ]



def test_a_misspelt_metric_in_an_alert_would_be_caught() -> None:
    names = _selected_names("sum(rate(pixelfleet_task_finished_total[5m])) > 0")
    assert not names <= exported_metric_names()
