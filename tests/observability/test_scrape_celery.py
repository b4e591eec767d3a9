"""Celery mode scraped as Prometheus would: a real `pixelfleet worker` (prefork pool) serves the
metrics of all its pool processes on its own port; the API's /metrics shows what it accepted and
the backlog of its queues."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api_helpers import image_bytes, sign_up, submit, truncated_jpeg
from tests.celery_mode.conftest import (  # noqa: F401  (fixtures shared with celery mode)
    Processes,
    backend,
    processes,
    redis_server,
    settings,
    wait_for_status,
)
from tests.harness.ports import free_port
from tests.observability.scrape import Scrape, moved
from tests.observability.test_scrape_embedded import KNOWN_SERIES

pytestmark = pytest.mark.celery

WORKER_METRICS_PORT = free_port()


@pytest.fixture
def celery_overrides() -> dict[str, Any]:
    return {"worker_metrics_port": WORKER_METRICS_PORT}


async def test_the_worker_serves_the_metrics_of_its_pool_processes(
    client: httpx.AsyncClient,
    processes: Processes,  # noqa: F811
) -> None:
    processes.worker(concurrency=2)
    metrics_url = f"http://127.0.0.1:{WORKER_METRICS_PORT}/metrics"
    # Before its pool processes have run a task, every known series is there, at 0.
    idle = Scrape.of(metrics_url)
    assert idle.missing(KNOWN_SERIES) == []
    assert idle.total("pixelfleet_webhook_deliveries_total") == 0
    headers = await sign_up(client, "scraped-celery@example.com")
    api_before = Scrape.parse((await client.get("/metrics")).text)

    pipeline = {"operations": [{"op": "resize", "width": 200}], "output": {"format": "png"}}
    good = [
        (await submit(client, headers, pipeline, image_bytes("JPEG", (640, 480)))).json()
        for _ in "ab"
    ]
    bad = (await submit(client, headers, pipeline, truncated_jpeg())).json()
    for task in good:
        await wait_for_status(client, headers, task["id"], {"succeeded"})
    await wait_for_status(client, headers, bad["id"], {"failed"})

    worker = Scrape.of(metrics_url)
    # Every known series is there in this process too, at 0 until it moves.
    assert worker.missing(KNOWN_SERIES) == []
    assert worker.value("pixelfleet_tasks_finished_total", {"outcome": "cancelled"}) == 0
    # A fresh worker: its counters are exactly this test's work, summed over its pool.
    assert worker.total("pixelfleet_tasks_finished_total", outcome="succeeded") == 2
    assert worker.total("pixelfleet_tasks_finished_total", outcome="failed") == 1
    assert worker.total("pixelfleet_operation_seconds_count", operation="resize") == 2
    assert worker.total("pixelfleet_encode_seconds_count", format="png") == 2
    assert worker.total("pixelfleet_task_queue_seconds_count") == 3

    api = await client.get("/metrics")
    assert api.status_code == 200
    api_after = Scrape.parse(api.text)
    assert moved(api_before, api_after, "pixelfleet_tasks_submitted_total") == 3
    queues = api_after.label_values("pixelfleet_queue_backlog", "queue")
    queue = processes.settings.celery_queue
    assert {queue, f"{queue}.control"} <= queues
    assert api_after.value("pixelfleet_queue_backlog", {"queue": queue}) == 0
