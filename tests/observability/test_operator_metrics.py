"""The operator's metrics, scraped over HTTP from its metrics port as Prometheus does: every run
of an ImageJob handler is counted, a run that fails counts as an error, and the autoscaler's
gauges show what the WorkerPool's status says, until the pool is deleted and its series go."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pixelfleet.settings import Settings
from tests.api_helpers import image_bytes, sign_up, submit
from tests.autoscaling.steps import pool_status, worker_deployment, worker_pool
from tests.celery_mode.conftest import Processes, eventually
from tests.harness.kubernetes import EmulatedCluster
from tests.operator import conftest as operator_suite
from tests.operator.conftest import NAMESPACE

pytestmark = pytest.mark.operator

# The operator suite's fixtures: real Redis and PostgreSQL, the emulated cluster, the processes
# (its settings give the operator a free metrics port).
backend = operator_suite.backend
cluster = operator_suite.cluster
cluster_namespaces = operator_suite.cluster_namespaces
operator_overrides = operator_suite.operator_overrides
processes = operator_suite.processes
redis_server = operator_suite.redis_server
settings = operator_suite.settings

QUICK = {"operations": [{"op": "grayscale"}], "output": {"format": "png"}}
RECONCILES = "pixelfleet_operator_reconciles_total"
ERRORS = "pixelfleet_operator_errors_total"
DESIRED = "pixelfleet_autoscaler_desired_replicas"
CURRENT = "pixelfleet_autoscaler_current_replicas"
BACKLOG = "pixelfleet_queue_backlog"


class Scrape:
    """One scrape of the operator's metrics port."""

    def __init__(self, text: str) -> None:
        self.samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def count(self, name: str, **labels: str) -> float:
        return self.value(name, **labels) or 0.0


async def scrape(settings: Settings) -> Scrape:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{settings.operator_metrics_port}/metrics")
    assert response.status_code == 200
    return Scrape(response.text)


def _phase(cluster: EmulatedCluster, name: str) -> str | None:
    job = cluster.get("imagejobs", NAMESPACE, name)
    return None if job is None else (job.get("status") or {}).get("phase")


async def test_imagejob_handler_runs_are_counted_and_a_refused_job_counts_as_an_error(
    client: httpx.AsyncClient, cluster: EmulatedCluster, processes: Processes, settings: Settings
) -> None:
    processes.operator()
    before = await scrape(settings)
    headers = await sign_up(client, "counted@example.com")
    names = [
        f"task-{(await submit(client, headers, QUICK, image_bytes(size=(32, 32)))).json()['id']}"
        for _ in range(3)
    ]
    cluster.create(
        "imagejobs",
        {
            "apiVersion": "pixelfleet.dev/v1alpha1",
            "kind": "ImageJob",
            "metadata": {"name": "handmade"},
            "spec": {"taskId": "not-a-uuid", "userId": "u", "pipeline": {}},
        },
        NAMESPACE,
    )

    async def handled() -> bool:
        return all(_phase(cluster, name) == "Queued" for name in names) and (
            _phase(cluster, "handmade") == "Failed"
        )

    await eventually(handled, within=30)
    cluster.delete("imagejobs", NAMESPACE, names[0])

    async def deleted_and_resynced() -> bool:
        after = await scrape(settings)
        return (
            cluster.get("imagejobs", NAMESPACE, names[0]) is None
            and after.count(RECONCILES, resource="imagejobs", handler="delete") >= 1
            and after.count(RECONCILES, resource="imagejobs", handler="resync") >= 1
        )

    await eventually(deleted_and_resynced, within=30)
    after = await scrape(settings)

    def moved(name: str, handler: str) -> float:
        labels = {"resource": "imagejobs", "handler": handler}
        return after.count(name, **labels) - before.count(name, **labels)

    assert moved(RECONCILES, "create") == 4  # three tasks and the refused job
    assert moved(ERRORS, "create") == 1  # the refused job
    assert moved(RECONCILES, "delete") == 1
    assert moved(ERRORS, "delete") == 0
    assert after.value(ERRORS, resource="imagejobs", handler="resync") in (None, 0.0)


async def test_the_autoscaler_gauges_show_the_pool_status_until_the_pool_is_deleted(
    client: httpx.AsyncClient, cluster: EmulatedCluster, processes: Processes, settings: Settings
) -> None:
    queue = settings.celery_queue
    worker_deployment(cluster, replicas=0)
    processes.operator()
    worker_pool(cluster, queue)  # 2 tasks a replica, polled every 0.3 s
    headers = await sign_up(client, "gauges@example.com")
    for _ in range(3):
        await submit(client, headers, QUICK, image_bytes(size=(32, 32)))
    seen: dict[str, Any] = {}

    async def gauges_match_the_status() -> bool:
        status = pool_status(cluster)
        metrics = await scrape(settings)
        seen.update(status=status, metrics=metrics)
        return (
            status.get("backlog") == 3
            and status.get("currentReplicas") == 2  # scaled up, and seen scaled up
            and metrics.value(DESIRED, pool="images") == status["desiredReplicas"]
            and metrics.value(CURRENT, pool="images") == status["currentReplicas"]
            and metrics.value(BACKLOG, queue=queue) == status["waiting"]
        )

    await eventually(gauges_match_the_status, within=30)
    assert seen["status"]["desiredReplicas"] == 2
    assert seen["metrics"].count(RECONCILES, resource="workerpools", handler="scale") >= 2
    # No scaling failed: the series is there from the start, and still 0.
    assert seen["metrics"].value(ERRORS, resource="workerpools", handler="scale") == 0

    cluster.delete("workerpools", NAMESPACE, "images")

    async def series_gone() -> bool:
        metrics = await scrape(settings)
        return all(
            metrics.value(name, **labels) is None
            for name, labels in (
                (DESIRED, {"pool": "images"}),
                (CURRENT, {"pool": "images"}),
                (BACKLOG, {"queue": queue}),
            )
        )

    await eventually(series_gone, within=30)
