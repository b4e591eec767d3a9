"""The autoscaler at work: a burst scales the worker Deployment up at once; tasks a worker has
taken (reserved, unacknowledged) keep it up where a list-length scaler would see nothing; an
idle pool sleeps at zero and wakes from it; a drained queue scales down only after the window;
and before a scale-down the busy pod is made the costliest to delete."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest

from pixelfleet.operator.cluster import DELETION_COST
from pixelfleet.settings import Settings
from tests.api_helpers import image_bytes, noise_png, sign_up, submit
from tests.autoscaling.steps import (
    pool_status,
    replicas,
    worker_deployment,
    worker_pod,
    worker_pool,
)
from tests.celery_mode.conftest import Processes, wait_for_status
from tests.harness.kubernetes import EmulatedCluster
from tests.operator.conftest import NAMESPACE

pytestmark = [pytest.mark.autoscaling, pytest.mark.heavy]

T = TypeVar("T")
QUICK = {"operations": [{"op": "grayscale"}], "output": {"format": "png"}}
SLOW = {"output": {"format": "avif", "quality": 90}}


async def _until(condition: Callable[[], T | None], within: float = 30.0) -> T:
    return await asyncio.to_thread(EmulatedCluster.wait, condition, within, 0.05)


def _last_poll(cluster: EmulatedCluster) -> float:
    """When the operator last evaluated the pool (its clock): its latest recommendation."""
    recommendations = pool_status(cluster).get("recommendations") or [{"at": 0.0}]
    return float(recommendations[-1]["at"])


async def test_a_burst_scales_the_pool_up_within_one_poll(
    client: httpx.AsyncClient, cluster: EmulatedCluster, processes: Processes, settings: Settings
) -> None:
    worker_deployment(cluster, replicas=0)
    processes.operator()
    worker_pool(cluster, settings.celery_queue, pollSeconds=0.5)
    await _until(lambda: pool_status(cluster).get("currentReplicas") == 0)
    headers = await sign_up(client, "burst@example.com")

    for _ in range(7):
        await submit(client, headers, QUICK, image_bytes())
    waited = await _until(lambda: pool_status(cluster).get("backlog") == 7 and time.monotonic())
    await _until(lambda: replicas(cluster) == 4, within=1.5)  # one poll after the backlog

    status = pool_status(cluster)
    assert (status["waiting"], status["desiredReplicas"]) == (7, 4)
    assert status["lastScaleTime"]
    assert waited


async def test_tasks_a_worker_has_taken_keep_the_pool_up(
    client: httpx.AsyncClient,
    cluster: EmulatedCluster,
    processes: Processes,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker_deployment(cluster, replicas=1)
    worker_pod(cluster, "worker-a")
    monkeypatch.setenv("POD_NAME", "worker-a")
    processes.worker()
    processes.operator()
    worker_pool(cluster, settings.celery_queue)
    headers = await sign_up(client, "reserved@example.com")

    task_id = (await submit(client, headers, SLOW, noise_png((2000, 1500)))).json()["id"]
    await wait_for_status(client, headers, task_id, {"running"})
    status = await _until(
        lambda: (s := pool_status(cluster)).get("reserved", 0) >= 1 and s.get("running") == 1 and s
    )

    # The queue's list is empty: a list-length scaler would scale this busy pool to zero.
    assert status["waiting"] == 0
    assert status["desiredReplicas"] == 1
    assert replicas(cluster) == 1
    # Once it is done (cancelled here: its work stops at once), the pool sleeps.
    assert (await client.delete(f"/v1/tasks/{task_id}", headers=headers)).status_code == 200
    await _until(lambda: replicas(cluster) == 0)


async def test_an_idle_pool_sleeps_at_zero_and_wakes_at_its_activation_backlog(
    client: httpx.AsyncClient, cluster: EmulatedCluster, processes: Processes, settings: Settings
) -> None:
    worker_deployment(cluster, replicas=2)
    processes.operator()
    worker_pool(cluster, settings.celery_queue, activationTasks=3)
    await _until(lambda: replicas(cluster) == 0)
    headers = await sign_up(client, "wake@example.com")

    for _ in range(2):
        await submit(client, headers, QUICK, image_bytes())
    seen = await _until(lambda: pool_status(cluster).get("backlog") == 2 and _last_poll(cluster))
    await _until(lambda: _last_poll(cluster) >= seen + 1.0)  # several polls later (0.3 s apart)
    assert replicas(cluster) == 0  # below the activation backlog, the pool stays asleep

    await submit(client, headers, QUICK, image_bytes())
    await _until(lambda: replicas(cluster) == 2)  # 3 tasks, 2 per replica


async def test_a_drained_queue_scales_down_only_after_the_stabilization_window(
    client: httpx.AsyncClient, cluster: EmulatedCluster, processes: Processes, settings: Settings
) -> None:
    worker_deployment(cluster, replicas=0)
    processes.operator()
    worker_pool(cluster, settings.celery_queue, scaleDownStabilizationSeconds=4)
    headers = await sign_up(client, "window@example.com")
    ids = [(await submit(client, headers, QUICK, image_bytes())).json()["id"] for _ in range(4)]
    await _until(lambda: replicas(cluster) == 2)

    processes.worker()  # the backlog drains
    for task_id in ids:
        await wait_for_status(client, headers, task_id, {"succeeded"})
    drained = time.monotonic()
    await _until(lambda: pool_status(cluster).get("backlog") == 0)
    await _until(lambda: replicas(cluster) == 0, within=15)

    assert time.monotonic() - drained >= 3.0  # held through (most of) the 4 s window


async def test_before_a_scale_down_the_busy_pod_is_the_costliest_to_delete(
    client: httpx.AsyncClient,
    cluster: EmulatedCluster,
    processes: Processes,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker_deployment(cluster, replicas=2)
    for pod in ("worker-busy", "worker-idle"):
        worker_pod(cluster, pod)
    monkeypatch.setenv("POD_NAME", "worker-busy")
    processes.worker()
    processes.operator()
    headers = await sign_up(client, "costs@example.com")
    task_id = (await submit(client, headers, SLOW, noise_png((2000, 1500)))).json()["id"]
    await wait_for_status(client, headers, task_id, {"running"})

    worker_pool(cluster, settings.celery_queue)  # one task in flight: 1 replica is enough
    await _until(lambda: replicas(cluster) == 1)

    def cost(pod: str) -> int:
        found: dict[str, Any] | None = cluster.get("pods", NAMESPACE, pod)
        assert found is not None
        return int(found["metadata"]["annotations"][DELETION_COST])

    assert cost("worker-busy") > cost("worker-idle")
    # The ReplicaSet removes the pod with the lowest cost: the idle one, not the busy one.
    assert min(("worker-busy", "worker-idle"), key=cost) == "worker-idle"
    # Its work is not needed further: stopped now, the worker need not finish it to stop.
    assert (await client.delete(f"/v1/tasks/{task_id}", headers=headers)).status_code == 200
