"""The chart as an ops engineer reads it before installing: rendered objects found by kind and
component, with the pod specs, containers and environment of each workload at hand."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHART = Path(__file__).resolve().parents[2] / "charts" / "pixelfleet"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
# The default values, then each value set of `ci/`.
VALUE_SETS: list[Path | None] = [None, *CI_VALUES]
RELEASE = "pf"
NAMESPACE = "pixelfleet"
FULLNAME = f"{RELEASE}-pixelfleet"

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job", "Pod"}
ROLES = ("api", "worker", "beat", "operator")


@dataclass
class Rendered:
    manifests: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str, component: str) -> dict[str, Any]:
        found = [
            m
            for m in self.of_kind(kind)
            if m["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]
        assert len(found) == 1, f"{len(found)} {kind} objects of component {component}"
        return found[0]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        [found] = [m for m in self.of_kind(kind) if m["metadata"]["name"] == name]
        return found

    def workloads(self) -> Iterator[dict[str, Any]]:
        return (m for m in self.manifests if m["kind"] in WORKLOAD_KINDS)

    def pod_spec(self, kind: str, component: str) -> dict[str, Any]:
        return pod_spec_of(self.one(kind, component))

    def container(
        self, component: str, kind: str = "Deployment", name: str | None = None
    ) -> dict[str, Any]:
        """The component's container (the one called `name` in a pod of several)."""
        containers = self.pod_spec(kind, component)["containers"]
        [container] = [c for c in containers if name is None or c["name"] == name]
        return dict(container)

    def env(
        self, component: str, kind: str = "Deployment", name: str | None = None
    ) -> dict[str, dict[str, Any]]:
        return {e["name"]: e for e in self.container(component, kind, name).get("env", [])}


def value_set_id(values: Path | None) -> str:
    return "defaults" if values is None else values.stem


def pod_spec_of(workload: dict[str, Any]) -> dict[str, Any]:
    if workload["kind"] == "Pod":
        return dict(workload["spec"])
    return dict(workload["spec"]["template"]["spec"])


def pod_labels_of(workload: dict[str, Any]) -> dict[str, str]:
    if workload["kind"] == "Pod":
        return dict(workload["metadata"]["labels"])
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def all_containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())
