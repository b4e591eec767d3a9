"""Steps the autoscaling tests share: a worker Deployment, its pods, a WorkerPool, readings."""

from __future__ import annotations

from typing import Any

from tests.harness.kubernetes import EmulatedCluster
from tests.operator.conftest import NAMESPACE

DEPLOYMENT = "pixelfleet-worker"
LABELS = {"app.kubernetes.io/name": "pixelfleet-worker"}


def worker_deployment(cluster: EmulatedCluster, replicas: int) -> None:
    cluster.create(
        "deployments",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": DEPLOYMENT},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": LABELS},
                "template": {"metadata": {"labels": LABELS}, "spec": {"containers": []}},
            },
        },
        NAMESPACE,
    )


def worker_pod(cluster: EmulatedCluster, name: str) -> None:
    cluster.create(
        "pods",
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": LABELS}},
        NAMESPACE,
    )


def worker_pool(cluster: EmulatedCluster, queue: str, **spec: Any) -> None:
    cluster.create(
        "workerpools",
        {
            "apiVersion": "pixelfleet.dev/v1alpha1",
            "kind": "WorkerPool",
            "metadata": {"name": "images"},
            "spec": {
                "deployment": DEPLOYMENT,
                "queue": queue,
                "minReplicas": 0,
                "maxReplicas": 5,
                "targetTasksPerReplica": 2,
                "activationTasks": 1,
                "scaleDownStabilizationSeconds": 0,
                "pollSeconds": 0.3,
                **spec,
            },
        },
        NAMESPACE,
    )


def replicas(cluster: EmulatedCluster) -> int:
    deployment = cluster.get("deployments", NAMESPACE, DEPLOYMENT)
    assert deployment is not None
    return int(deployment["spec"]["replicas"])


def pool_status(cluster: EmulatedCluster) -> dict[str, Any]:
    pool = cluster.get("workerpools", NAMESPACE, "images")
    assert pool is not None
    return dict(pool.get("status") or {})
