"""The CRDs the chart installs are the ones the resource models generate, and they read as
`kubectl` shows them."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from pixelfleet.cli import main
from pixelfleet.operator.resources import ImageJobSpec, crd_manifests, render_yaml
from pixelfleet.sources.schemas import UrlSource

CHART_CRDS = Path(__file__).resolve().parent.parent / "charts" / "pixelfleet" / "crds"


@pytest.mark.parametrize("filename", sorted(crd_manifests()))
def test_the_chart_carries_the_generated_crd(filename: str) -> None:
    on_disk = (CHART_CRDS / filename).read_text(encoding="utf-8")
    assert on_disk == render_yaml(crd_manifests()[filename]), (
        f"charts/pixelfleet/crds/{filename} is stale: run "
        "`uv run pixelfleet crds --output-dir charts/pixelfleet/crds`"
    )


def test_the_crd_command_writes_what_the_chart_carries(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["crds", "--output-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for filename in crd_manifests():
        assert (tmp_path / filename).read_text() == (CHART_CRDS / filename).read_text()


def test_imagejobs_show_phase_progress_ops_user_duration_and_age() -> None:
    crd = yaml.safe_load((CHART_CRDS / "imagejobs.yaml").read_text())
    assert crd["spec"]["names"]["shortNames"] == ["ij"]
    assert crd["spec"]["scope"] == "Namespaced"
    [version] = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns == {
        "Phase": ".status.phase",
        "Progress": ".status.progress",
        "Ops": ".spec.ops",
        "Queue": ".spec.queue",
        "Task": ".status.taskId",
        "User": ".spec.userId",
        "Duration": ".status.duration",
        "Age": ".metadata.creationTimestamp",
    }


def test_creditbindings_show_account_budget_spent_and_age() -> None:
    crd = yaml.safe_load((CHART_CRDS / "creditbindings.yaml").read_text())
    assert crd["metadata"]["name"] == "creditbindings.pixelfleet.dev"
    assert crd["spec"]["names"]["shortNames"] == ["cb"]
    assert crd["spec"]["scope"] == "Namespaced"
    [version] = crd["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    columns = [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]]
    assert columns == [
        ("Account", ".spec.accountEmail"),
        ("Budget", ".spec.budgetCredits"),
        ("Spent", ".status.spentCredits"),
        ("Age", ".metadata.creationTimestamp"),
    ]
    schema = version["schema"]["openAPIV3Schema"]["properties"]
    assert set(schema["spec"]["required"]) == {"accountEmail", "budgetCredits"}
    assert schema["spec"]["properties"]["budgetCredits"]["minimum"] == 0
    assert {"spentCredits", "admittedJobs", "conditions"} <= set(
        schema["status"]["properties"]
    )


def test_workerpools_show_their_backlog_and_replicas() -> None:
    crd = yaml.safe_load((CHART_CRDS / "workerpools.yaml").read_text())
    assert crd["spec"]["names"]["shortNames"] == ["wp"]
    [version] = crd["spec"]["versions"]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert {
        "Backlog": ".status.backlog",
        "Desired": ".status.desiredReplicas",
        "Current": ".status.currentReplicas",
        "Last Scale": ".status.lastScaleTime",
        "Reason": ".status.reason",
    }.items() <= columns.items()
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert set(spec) == {
        "deployment",
        "queue",
        "minReplicas",
        "maxReplicas",
        "targetTasksPerReplica",
        "activationTasks",
        "scaleDownStabilizationSeconds",
        "pollSeconds",
    }
    assert spec["minReplicas"]["minimum"] == 0


def test_the_schema_is_structural() -> None:
    """What the API server demands of a CRD schema: no references, no anyOf of types, a type
    on every node (or an explicit free-form object)."""

    def check(node: object, path: str) -> None:
        if isinstance(node, dict):
            assert "$ref" not in node, path
            assert "anyOf" not in node, path
            if "properties" in node or "items" in node:
                assert "type" in node, path
            for key, value in node.items():
                check(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                check(value, f"{path}[{index}]")

    for filename in crd_manifests():
        other = yaml.safe_load((CHART_CRDS / filename).read_text())
        check(other["spec"]["versions"][0]["schema"]["openAPIV3Schema"], filename)
    crd = yaml.safe_load((CHART_CRDS / "imagejobs.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]
    # A job applied by hand names only its source and pipeline.
    assert set(spec["required"]) == {"source", "pipeline"}
    assert spec["properties"]["priority"] | {"description": ""} == {
        "type": "integer",
        "minimum": 0,
        "maximum": 9,
        "default": 0,
        "description": "",
    }
    assert spec["properties"]["pipeline"]["x-kubernetes-preserve-unknown-fields"] is True
    assert set(schema["properties"]["status"]["properties"]) >= {
        "phase",
        "progress",
        "attempts",
        "worker",
        "startedAt",
        "finishedAt",
        "durationMs",
        "outputs",
        "message",
        "conditions",
        "taskId",
    }
    assert "Rejected" in schema["properties"]["status"]["properties"]["phase"]["enum"]


def test_a_spec_reads_back_from_the_camel_case_kubernetes_shows() -> None:
    spec = ImageJobSpec.model_validate(
        {
            "taskId": "0b7a9d2e-5c1f-4e8a-9b3d-2f6c8e1a4d70",
            "userId": "u",
            "source": {"key": "k", "contentType": "image/png", "bytes": 1, "width": 1, "height": 1},
            "pipeline": {"operations": []},
        }
    )
    assert spec.ttl_seconds_after_finished == 3600
    assert spec.model_dump(by_alias=True)["source"]["contentType"] == "image/png"


def test_a_job_applied_by_hand_names_one_source_and_no_task() -> None:
    spec = ImageJobSpec.model_validate(
        {
            "source": {"url": "https://images.example/a.jpg"},
            "pipeline": {"output": {"format": "webp"}},
            "queue": "gpu",
            "priority": 7,
            "activeDeadlineSeconds": 60,
            "backoffLimit": 1,
        }
    )
    assert spec.applied_by_hand
    assert spec.source.requested() == UrlSource(url="https://images.example/a.jpg")

    for source in ({}, {"url": "https://a.example/x.png", "asset": str(uuid.uuid4())}):
        with pytest.raises(ValidationError, match="exactly one of url, asset, upload or task"):
            ImageJobSpec.model_validate({"source": source, "pipeline": {}})
    with pytest.raises(ValidationError, match="userId is set by PixelFleet"):
        ImageJobSpec.model_validate(
            {"userId": "u", "source": {"url": "https://a.example/x.png"}, "pipeline": {}}
        )
    with pytest.raises(ValidationError, match="also names userId and its stored source"):
        ImageJobSpec.model_validate(
            {
                "taskId": "0b7a9d2e-5c1f-4e8a-9b3d-2f6c8e1a4d70",
                "source": {"url": "https://a.example/x.png"},
                "pipeline": {},
            }
        )
