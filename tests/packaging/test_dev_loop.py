"""The dev loop, read as a developer would before running it (no cluster, Docker or skaffold
here): `skaffold.yaml` builds the root Dockerfile and deploys this repository's chart with the
image it built and values the chart knows, its port-forward names the API Service the chart
really renders for that release (helm renders it), and `deploy/kind.yaml` is a single-node
cluster whose port mapping listens on loopback only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness.helm import Helm, validate_manifests

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "pixelfleet"
SKAFFOLD: dict[str, Any] = yaml.safe_load((ROOT / "skaffold.yaml").read_text(encoding="utf-8"))
KIND: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "kind.yaml").read_text(encoding="utf-8"))
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))

# The Go template variables of `setValueTemplates`, e.g. `{{.IMAGE_REPO_pixelfleet}}`.
TEMPLATE_VARIABLE = re.compile(r"\{\{\s*\.([A-Za-z0-9_]+)\s*\}\}")
NODE_PORTS = range(30000, 32768)
# What skaffold's build hands to the deploy: (tag, digest) of an image loaded into kind (no
# digest: the tag is a local one named after the image ID) and of a pushed image.
LOADED = ("4f5e0c1d2b3a49687766554433221100ffeeddccbbaa99887766554433221100", "")
PUSHED = ("v0.1.0-3-gabc1234", "sha256:" + "ab" * 32)


def _artifacts() -> list[dict[str, Any]]:
    artifacts: list[dict[str, Any]] = SKAFFOLD["build"]["artifacts"]
    return artifacts


def _releases() -> list[dict[str, Any]]:
    releases: list[dict[str, Any]] = SKAFFOLD["deploy"]["helm"]["releases"]
    return releases


def _template_name(image: str) -> str:
    """An artifact's name as skaffold spells it in template variables."""
    return re.sub(r"[/\-.:]", "_", image)


def _value_at(values: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted helm key (`worker.resources.requests.cpu`); KeyError if absent."""
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"{dotted}: no {part!r} in the chart's values.yaml")
        node = node[part]
    return node


def _expand(template: str, variables: dict[str, str]) -> str:
    """A setValueTemplates value as skaffold expands it: variables substituted, then a trailing
    "@" (an empty digest) dropped. An unknown variable is a KeyError."""
    expanded = TEMPLATE_VARIABLE.sub(lambda match: variables[match.group(1)], template)
    return expanded.removesuffix("@")


def _build_variables(tag: str, digest: str) -> dict[str, str]:
    """The per-artifact variables skaffold offers to setValueTemplates after a build."""
    variables: dict[str, str] = {}
    for artifact in _artifacts():
        name = _template_name(artifact["image"])
        variables[f"IMAGE_REPO_{name}"] = artifact["image"]
        variables[f"IMAGE_TAG_{name}"] = tag
        variables[f"IMAGE_DIGEST_{name}"] = digest
    return variables


def _text(value: Any) -> str:
    """A setValues value as skaffold reads it (a string, as in its Go config)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _helm_set_args(release: dict[str, Any], tag: str, digest: str) -> list[str]:
    """The `--set` arguments skaffold gives `helm` for the release after a build with this tag
    and digest: setValues as written, then setValueTemplates expanded."""
    args: list[str] = []
    for key, value in sorted(release.get("setValues", {}).items()):
        args += ["--set", f"{key}={_text(value)}"]
    variables = _build_variables(tag, digest)
    for key, template in sorted(release.get("setValueTemplates", {}).items()):
        args += ["--set", f"{key}={_expand(template, variables)}"]
    return args


def _render(helm: Helm, release: dict[str, Any], tag: str, digest: str) -> list[dict[str, Any]]:
    """The manifests of the release as skaffold would deploy it."""
    return helm.template(
        CHART,
        namespace=release["namespace"],
        release=release["name"],
        extra_args=_helm_set_args(release, tag, digest),
    )


def _pod_specs(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = []
    for manifest in manifests:
        if manifest["kind"] == "Pod":
            specs.append(manifest["spec"])
        elif manifest["kind"] in {"Deployment", "StatefulSet", "Job"}:
            specs.append(manifest["spec"]["template"]["spec"])
    return specs


def _component(manifests: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    [found] = [
        m
        for m in manifests
        if m["kind"] == kind
        and m["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
    ]
    return found


# ---- skaffold.yaml: what it builds --------------------------------------------------------


def test_skaffold_reads_the_file_as_a_v4beta11_config_named_pixelfleet() -> None:
    assert SKAFFOLD["apiVersion"] == "skaffold/v4beta11"
    assert SKAFFOLD["kind"] == "Config"
    assert SKAFFOLD["metadata"]["name"] == "pixelfleet"


def test_the_one_artifact_is_the_root_dockerfile_built_by_docker() -> None:
    [artifact] = _artifacts()
    assert artifact["image"] == "pixelfleet"
    context = ROOT / artifact.get("context", ".")
    dockerfile = context / artifact["docker"].get("dockerfile", "Dockerfile")
    assert context.resolve() == ROOT
    assert dockerfile.resolve() == ROOT / "Dockerfile"
    assert dockerfile.is_file()


def test_the_image_is_loaded_into_the_local_cluster_not_pushed() -> None:
    assert SKAFFOLD["build"]["local"]["push"] is False


# ---- skaffold.yaml: what it deploys -------------------------------------------------------


def test_every_release_deploys_this_repositorys_chart_into_its_own_namespace() -> None:
    releases = _releases()
    assert releases
    for release in releases:
        assert release["chartPath"] == "charts/pixelfleet"
        assert (ROOT / release["chartPath"] / "Chart.yaml").is_file()
        assert release["namespace"] == "pixelfleet"
        assert release["createNamespace"] is True


def test_the_release_takes_its_image_from_the_artifact_skaffold_builds() -> None:
    [artifact] = _artifacts()
    name = _template_name(artifact["image"])
    for release in _releases():
        templates = release["setValueTemplates"]
        repository = TEMPLATE_VARIABLE.findall(templates["image.repository"])
        tag = TEMPLATE_VARIABLE.findall(templates["image.tag"])
        assert repository == [f"IMAGE_REPO_{name}"]
        assert tag == [f"IMAGE_TAG_{name}", f"IMAGE_DIGEST_{name}"]


def test_every_value_skaffold_sets_is_a_key_of_the_charts_values() -> None:
    for release in _releases():
        keys = [*release.get("setValues", {}), *release.get("setValueTemplates", {})]
        assert keys
        for key in keys:
            _value_at(VALUES, key)


@pytest.mark.parametrize(("tag", "digest"), [LOADED, PUSHED], ids=["loaded", "pushed"])
def test_every_pixelfleet_container_runs_the_image_skaffold_built(
    helm: Helm, tag: str, digest: str
) -> None:
    [artifact] = _artifacts()
    expected = f"{artifact['image']}:{tag}" + (f"@{digest}" if digest else "")
    third_party = (
        VALUES["postgresql"]["image"]["repository"],
        VALUES["redis"]["image"]["repository"],
    )
    for release in _releases():
        manifests = _render(helm, release, tag, digest)
        images = {
            container["image"]
            for spec in _pod_specs(manifests)
            for container in spec.get("initContainers", []) + spec["containers"]
        }
        ours = {image for image in images if image.split(":")[0] not in third_party}
        assert ours == {expected}


def test_the_laptop_sized_values_render_valid_manifests_that_apply_them(helm: Helm) -> None:
    for release in _releases():
        manifests = _render(helm, release, *LOADED)
        assert validate_manifests(manifests) == []
        assert _component(manifests, "Deployment", "api")["spec"]["replicas"] == 1
        assert _component(manifests, "WorkerPool", "worker")["spec"]["maxReplicas"] == 2
        worker = _component(manifests, "Deployment", "worker")["spec"]["template"]["spec"]
        assert worker["containers"][0]["resources"]["requests"]["cpu"] == "100m"


def test_the_dev_loop_runs_with_production_settings(helm: Helm) -> None:
    for release in _releases():
        manifests = _render(helm, release, *LOADED)
        api = _component(manifests, "Deployment", "api")["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in api["containers"][0]["env"]}
        assert env["PIXELFLEET_ENV"] == "production"


# ---- skaffold.yaml: how the developer reaches the API -------------------------------------


def test_the_port_forward_reaches_the_api_service_the_chart_renders_for_the_release(
    helm: Helm,
) -> None:
    [forward] = SKAFFOLD["portForward"]
    [release] = [r for r in _releases() if r["namespace"] == forward["namespace"]]
    manifests = _render(helm, release, *LOADED)
    service = _component(manifests, "Service", "api")
    assert forward["resourceType"] == "service"
    assert forward["resourceName"] == service["metadata"]["name"]
    assert forward["namespace"] == service["metadata"]["namespace"]
    assert forward["port"] in {port["port"] for port in service["spec"]["ports"]}
    assert forward["localPort"] == 8000


# ---- deploy/kind.yaml ---------------------------------------------------------------------


def test_kind_reads_the_file_as_a_cluster_named_pixelfleet() -> None:
    assert KIND["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert KIND["kind"] == "Cluster"
    assert KIND["name"] == "pixelfleet"


def test_the_cluster_is_a_single_control_plane_node() -> None:
    assert [node["role"] for node in KIND["nodes"]] == ["control-plane"]


def test_a_read_write_once_files_volume_keeps_the_cluster_to_one_node() -> None:
    # The API and the workers share the `files` volume: with ReadWriteOnce they must be
    # scheduled on the same node.
    if VALUES["storage"]["files"]["accessModes"] == ["ReadWriteOnce"]:
        assert len(KIND["nodes"]) == 1


def test_the_port_mapping_listens_on_loopback_and_reaches_a_node_port() -> None:
    [control_plane] = KIND["nodes"]
    mappings = control_plane["extraPortMappings"]
    assert mappings
    for mapping in mappings:
        assert mapping["listenAddress"] == "127.0.0.1"
        assert mapping["containerPort"] in NODE_PORTS
    assert {(m["containerPort"], m["hostPort"]) for m in mappings} == {(30080, 8080)}
