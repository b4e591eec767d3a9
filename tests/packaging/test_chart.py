"""The Helm chart with the real helm binary: it lints strictly and renders valid Kubernetes objects
with the default values and every value set in `charts/pixelfleet/ci/`; bad values are refused
before anything renders; the notes tell the user where the API is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.harness.helm import Helm, validate_manifests
from tests.packaging.rendered import (
    CHART,
    CI_VALUES,
    NAMESPACE,
    RELEASE,
    VALUE_SETS,
    Rendered,
    value_set_id,
)


def _files(values: Path | None) -> tuple[Path, ...]:
    return () if values is None else (values,)


def test_there_is_a_value_set_for_each_way_ops_install_it() -> None:
    assert {p.stem for p in CI_VALUES} >= {
        "external-database-values",
        "external-redis-values",
        "ingress-values",
        "no-autoscaling-values",
    }


@pytest.mark.parametrize("values", VALUE_SETS, ids=value_set_id)
def test_the_chart_lints_strictly(helm: Helm, values: Path | None) -> None:
    result = helm.lint(CHART, *_files(values), strict=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", VALUE_SETS, ids=value_set_id)
def test_every_rendered_object_is_valid_for_kubernetes(helm: Helm, values: Path | None) -> None:
    manifests = helm.template(CHART, *_files(values), include_crds=True)
    assert validate_manifests(manifests) == []
    names = [(m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]) for m in manifests]
    assert len(names) == len(set(names)), "two objects of one kind share a name in a namespace"
    for manifest in manifests:
        if manifest["kind"] not in {
            "CustomResourceDefinition",
            "ClusterRole",
            "ClusterRoleBinding",
        }:
            # Only the operator's grants in the namespaces it watches live beyond the release's.
            given = yaml.safe_load(values.read_text()) if values is not None else {}
            watched = given.get("operator", {}).get("watchNamespaces", [])
            grants = manifest["kind"] in {"Role", "RoleBinding"}
            allowed = {NAMESPACE, *watched} if grants else {NAMESPACE}
            assert manifest["metadata"]["namespace"] in allowed, manifest["metadata"]["name"]


@pytest.mark.parametrize("values", VALUE_SETS, ids=value_set_id)
def test_rendered_custom_resources_are_valid_for_their_crds(
    helm: Helm, values: Path | None
) -> None:
    schemas = {
        crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for crd in (yaml.safe_load(p.read_text()) for p in (CHART / "crds").glob("*.yaml"))
    }
    for manifest in helm.template(CHART, *_files(values)):
        if manifest["apiVersion"].startswith("pixelfleet.dev/"):
            # OpenAPI v3.0 schemas (boolean exclusiveMinimum) follow JSON Schema draft 4.
            spec_schema = schemas[manifest["kind"]]["properties"]["spec"]
            jsonschema.Draft4Validator(spec_schema).validate(manifest.get("spec", {}))


def test_an_upgrade_renders_valid_objects_too(helm: Helm) -> None:
    manifests = helm.template(CHART, extra_args=["--is-upgrade"])
    assert validate_manifests(manifests) == []


@pytest.mark.parametrize(
    ("set_values", "message"),
    [
        ({"postgresql": {"enabled": False}}, "/externalDatabase/host"),
        ({"redis": {"enabled": False}}, "/externalRedis/host"),
        ({"api": {"replicas": 3}}, "'replicas' not allowed"),
        ({"worker": {"replicaCount": -1}}, "/worker/replicaCount"),
        ({"config": {"env": "staging"}}, "/config/env"),
        ({"secrets": {"jwtSecret": "short"}}, "/secrets/jwtSecret"),
        ({"storage": {"url": "ftp://files"}}, "/storage/url"),
        ({"ingress": {"enabled": True, "hosts": [{"host": "a.example", "paths": []}]}}, "paths"),
    ],
)
def test_bad_values_are_refused_before_anything_renders(
    helm: Helm, set_values: dict[str, Any], message: str
) -> None:
    with pytest.raises(RuntimeError, match="values don't meet the specifications") as refused:
        helm.template(CHART, set_values=set_values)
    assert message in str(refused.value)


def test_razorpay_keys_without_their_secrets_are_refused_with_the_fix(helm: Helm) -> None:
    with pytest.raises(RuntimeError, match=r"razorpay\.keySecret is required"):
        helm.template(CHART, set_values={"razorpay": {"keyId": "rzp_live_x"}})


def _notes(helm: Helm, *args: str) -> str:
    result = helm.run(
        "install", RELEASE, CHART, "--namespace", NAMESPACE, "--dry-run=client", *args
    )
    assert result.returncode == 0, result.stderr
    return result.stdout[result.stdout.index("NOTES:") :]


def test_the_notes_say_how_to_reach_the_api_and_watch_imagejobs(helm: Helm) -> None:
    notes = _notes(helm)
    assert "kubectl port-forward -n pixelfleet service/pf-pixelfleet-api 8000:80" in notes
    assert "kubectl get imagejobs -n pixelfleet" in notes
    assert "helm test pf -n pixelfleet" in notes
    assert "Payments are off" in notes


def test_with_an_ingress_the_notes_give_its_address(helm: Helm) -> None:
    notes = _notes(helm, "--values", str(CHART / "ci" / "ingress-values.yaml"))
    assert "https://images.example.com/docs" in notes
    assert "port-forward" not in notes
    assert "Payments are off" not in notes


def test_the_rendered_set_has_every_part(helm: Helm) -> None:
    rendered = Rendered(helm.template(CHART))
    for role in ("api", "worker", "beat", "operator"):
        rendered.one("Deployment", role)
    for server in ("postgresql", "redis"):
        rendered.one("StatefulSet", server)
        rendered.one("Service", server)
    rendered.one("Service", "api")
    rendered.one("WorkerPool", "worker")
    assert {m["kind"] for m in rendered.manifests} >= {
        "Secret",
        "Job",
        "Role",
        "RoleBinding",
        "ServiceAccount",
        "PodDisruptionBudget",
        "PersistentVolumeClaim",
        "Pod",
    }


def test_the_longest_release_name_helm_allows_still_gives_valid_names(helm: Helm) -> None:
    """Workloads stay within 52 characters, so that what Kubernetes derives from their names
    (StatefulSet pods and revision labels, a Job's pod labels) fits in 63; the rest within 63."""
    release = "a-release-name-of-fifty-three-characters-the-max-ok-x"
    assert len(release) == 53
    manifests = helm.template(CHART, release=release, include_crds=True)
    assert validate_manifests(manifests) == []
    for manifest in manifests:
        name = manifest["metadata"]["name"]
        if manifest["kind"] in {"Deployment", "StatefulSet", "Job", "Pod"}:
            assert len(name) <= 52, (manifest["kind"], name)
        elif "namespace" in manifest["metadata"]:
            assert len(name) <= 63, (manifest["kind"], name)
        if "namespace" in manifest["metadata"]:
            assert name.startswith(release[:20]), name
