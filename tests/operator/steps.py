"""Steps the operator tests share: pipelines, a CreditBinding and an ImageJob applied as kubectl
would, and waits on an ImageJob in the emulated cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from tests.harness.kubernetes import EmulatedCluster
from tests.operator.conftest import NAMESPACE

T = TypeVar("T")
QUICK = {
    "operations": [{"op": "thumbnail", "width": 64, "height": 64}],
    "output": {"format": "webp"},
}
SLOW = {"output": {"format": "avif", "quality": 90}}


def imagejob(cluster: EmulatedCluster, task_id: str) -> dict[str, Any] | None:
    return cluster.get("imagejobs", NAMESPACE, f"task-{task_id}")


async def until(condition: Callable[[], T | None], within: float = 60.0) -> T:
    return await asyncio.to_thread(EmulatedCluster.wait, condition, within, 0.05)


async def phase(
    cluster: EmulatedCluster, task_id: str, phases: set[str], within: float = 60.0
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        job = imagejob(cluster, task_id)
        if job is not None and (job.get("status") or {}).get("phase") in phases:
            return job
        return None

    return await until(reached, within)


def reasons(cluster: EmulatedCluster, task_id: str) -> list[str]:
    return [e.get("reason", "") for e in cluster.events(NAMESPACE, involving=f"task-{task_id}")]


def bind(
    cluster: EmulatedCluster, namespace: str, email: str, budget: int, name: str = "billing"
) -> None:
    cluster.create(
        "creditbindings",
        {
            "apiVersion": "pixelfleet.dev/v1alpha1",
            "kind": "CreditBinding",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"accountEmail": email, "budgetCredits": budget},
        },
        namespace,
    )


def apply(cluster: EmulatedCluster, namespace: str, name: str, **spec: Any) -> None:
    cluster.create(
        "imagejobs",
        {
            "apiVersion": "pixelfleet.dev/v1alpha1",
            "kind": "ImageJob",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        },
        namespace,
    )
