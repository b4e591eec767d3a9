"""The Helm chart as far as it goes: it lints strictly, renders, every manifest is valid against
the Kubernetes schemas, and the worker gets the hard time limit to finish its tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.harness.helm import Helm, validate_manifests

CHART = Path(__file__).resolve().parents[2] / "charts" / "pixelfleet"


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(tmp_path_factory.mktemp("helm"))


def _worker(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    [worker] = [
        m
        for m in manifests
        if m["kind"] == "Deployment" and m["metadata"]["name"].endswith("-worker")
    ]
    return worker


def test_the_chart_lints_strictly(helm: Helm) -> None:
    result = helm.lint(CHART, strict=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rendered_manifest_is_valid(helm: Helm) -> None:
    manifests = helm.template(CHART, include_crds=True)
    assert {m["kind"] for m in manifests} >= {"CustomResourceDefinition", "Deployment"}
    assert validate_manifests(manifests) == []


@pytest.mark.parametrize(("limit", "extra"), [(150, 30), (600, 10)])
def test_a_stopping_worker_gets_the_hard_time_limit_to_finish(
    helm: Helm, limit: int, extra: int
) -> None:
    manifests = helm.template(
        CHART,
        set_values={
            "config": {"taskTimeLimitSeconds": limit, "taskSoftTimeLimitSeconds": limit - 10},
            "worker": {"terminationGraceExtraSeconds": extra},
        },
    )
    spec = _worker(manifests)["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == limit + extra
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env["PIXELFLEET_TASK_TIME_LIMIT_SECONDS"]["value"] == str(limit)
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_the_worker_runs_as_a_non_root_user_on_a_read_only_root(helm: Helm) -> None:
    spec = _worker(helm.template(CHART))["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    container = spec["containers"][0]["securityContext"]
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False


def test_the_env_names_the_chart_sets_are_settings_the_code_reads(helm: Helm) -> None:
    from pixelfleet.settings import Settings

    readable = {f"PIXELFLEET_{name.upper()}" for name in Settings.model_fields}
    env = _worker(helm.template(CHART))["spec"]["template"]["spec"]["containers"][0]["env"]
    names = {e["name"] for e in env if e["name"].startswith("PIXELFLEET_")}
    assert names <= readable, names - readable
