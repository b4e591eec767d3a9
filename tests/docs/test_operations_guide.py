"""The operations guide against the code: it explains every metric PixelFleet exports, lists the
alerts of the chart's rule file with their severity and duration (without copies of their
expressions), and its autoscaling and kubectl sections name the WorkerPool's real fields and the
printer columns `kubectl get` shows."""

from __future__ import annotations

import re

import yaml

from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.spec import parse_pipeline
from pixelfleet.operator.resources import (
    CreditBindingSpec,
    ImageJobSpec,
    WorkerPoolSpec,
    creditbinding_crd,
    imagejob_crd,
    workerpool_crd,
)
from tests.docs.guides import blocks, defined_metric_names, guide_text
from tests.packaging.rendered import CHART

GUIDE = "operations.md"
ALERT_RULES = CHART / "alerts" / "pixelfleet.yaml"


def test_the_guide_explains_every_metric_pixelfleet_exports() -> None:
    text = guide_text(GUIDE)
    missing = {name for name in defined_metric_names() if f"`{name}`" not in text}
    assert not missing, sorted(missing)


def test_the_guide_lists_every_shipped_alert_as_the_rule_file_defines_it() -> None:
    rows = re.findall(
        r"^\| `(PixelFleet\w+)` \| (\w+) \| (\w+) \|", guide_text(GUIDE), flags=re.MULTILINE
    )
    groups = yaml.safe_load(ALERT_RULES.read_text())["groups"]
    shipped = [
        (rule["alert"], rule["labels"]["severity"], rule.get("for", "none"))
        for group in groups
        for rule in group["rules"]
    ]
    assert rows == shipped


def test_the_guide_keeps_no_alert_expression_of_its_own() -> None:
    # The rule file is the one place of the expressions: a copy here would drift from it.
    assert not blocks(GUIDE, "promql")
    assert "pixelfleet/alerts/pixelfleet.yaml" in guide_text(GUIDE)


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


def test_the_kubectl_apply_examples_are_a_valid_binding_and_job_applied_by_hand() -> None:
    examples = {
        document["kind"]: document
        for block in blocks(GUIDE, "yaml")
        for document in [yaml.safe_load(block.text)]
        if document.get("kind") in ("CreditBinding", "ImageJob")
    }
    binding, job = examples["CreditBinding"], examples["ImageJob"]
    assert binding["metadata"]["namespace"] == job["metadata"]["namespace"]
    CreditBindingSpec.model_validate(binding["spec"])
    spec = ImageJobSpec.model_validate(job["spec"])
    assert spec.applied_by_hand
    parse_pipeline(spec.pipeline, ImageLimits())  # as the API would take it
    columns = [c["name"] for c in creditbinding_crd()["spec"]["versions"][0][
        "additionalPrinterColumns"
    ]]
    assert f"# {', '.join(columns)}" in guide_text(GUIDE)
