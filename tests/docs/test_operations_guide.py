"""The operations guide against the code: it explains every metric PixelFleet exports, its alert
expressions parse as PromQL and read only real metrics, and its autoscaling and kubectl sections
name the WorkerPool's real fields and the printer columns `kubectl get` shows."""

from __future__ import annotations

from typing import Any

import promql_parser
import yaml

from pixelfleet.operator.resources import WorkerPoolSpec, imagejob_crd, workerpool_crd
from tests.docs.guides import blocks, defined_metric_names, exported_metric_names, guide_text

GUIDE = "operations.md"


def _selected_names(expr: str) -> set[str]:
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            found.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def test_the_guide_explains_every_metric_pixelfleet_exports() -> None:
    text = guide_text(GUIDE)
    missing = {name for name in defined_metric_names() if f"`{name}`" not in text}
    assert not missing, sorted(missing)


def test_every_alert_expression_parses_and_reads_only_exported_metrics() -> None:
    alerts = [block.text for block in blocks(GUIDE, "promql")]
    assert len(alerts) >= 8
    read: set[str] = set()
    for expr in alerts:
        names = _selected_names(expr)
        assert names, expr
        assert names <= exported_metric_names(), (expr, names - exported_metric_names())
        read |= names
    # Failures, stalls, waiting, backlog, capacity, the API, the operator, webhooks and money.
    assert {
        "pixelfleet_tasks_finished_total",
        "pixelfleet_tasks_submitted_total",
        "pixelfleet_task_queue_seconds_bucket",
        "pixelfleet_queue_backlog",
        "pixelfleet_autoscaler_desired_replicas",
        "pixelfleet_http_request_duration_seconds_count",
        "pixelfleet_operator_errors_total",
        "pixelfleet_webhook_deliveries_total",
        "pixelfleet_credits_total",
    } <= read


def test_a_misspelt_alert_would_be_caught() -> None:
    names = _selected_names("sum(rate(pixelfleet_task_finished_total[5m])) > 0")
    assert not names <= exported_metric_names()


def test_the_workerpool_example_is_a_valid_workerpool() -> None:
    [example] = [
        yaml.safe_load(block.text)
        for block in blocks(GUIDE, "yaml")
        if "kind: WorkerPool" in block.text
    ]
    assert example["apiVersion"] == "pixelfleet.dev/v1alpha1"
    WorkerPoolSpec.model_validate(example["spec"])
    assert set(example["spec"]) == {
        field.alias or name for name, field in WorkerPoolSpec.model_fields.items()
    }


def test_the_tuning_table_names_every_workerpool_field() -> None:
    text = guide_text(GUIDE)
    for name, field in WorkerPoolSpec.model_fields.items():
        assert f"| `{field.alias or name}` |" in text, field.alias


def test_the_kubectl_recipes_name_the_printer_columns_kubectl_shows() -> None:
    text = guide_text(GUIDE)
    for crd in (imagejob_crd(), workerpool_crd()):
        [version] = crd["spec"]["versions"]
        for column in version["additionalPrinterColumns"]:
            assert column["name"] in text, column["name"]
