"""The operator started for one test, where the test is about how it starts or about its
settings: with no worker yet, with a TTL for finished ImageJobs, after ImageJobs already exist
(its log lines name their request, task and user), against an unmigrated database, killed and
started again, and facing a burst; restarts or bursts neither lose nor repeat work."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest

from pixelfleet.operator.resources import REQUEST_ID_ANNOTATION
from pixelfleet.settings import Settings
from tests.api_helpers import balance_of, image_bytes, sign_up, submit
from tests.celery_mode.conftest import Processes, wait_for_status
from tests.harness.celery import CeleryProcess
from tests.harness.kubernetes import EmulatedCluster
from tests.harness.redis import waiting_messages
from tests.operator.conftest import NAMESPACE
from tests.operator.steps import QUICK, imagejob, phase, until

pytestmark = [pytest.mark.operator, pytest.mark.heavy]


async def test_deleting_an_imagejob_cancels_and_refunds_its_queued_task(
    client: httpx.AsyncClient, cluster: EmulatedCluster, processes: Processes
) -> None:
    processes.operator()  # no worker: the task waits in the queue
    headers = await sign_up(client, "delete@example.com")
    before = await balance_of(client, headers)
    task_id = (await submit(client, headers, QUICK, image_bytes())).json()["id"]
    job = await phase(cluster, task_id, {"Queued"})
    assert job["metadata"]["finalizers"] == ["pixelfleet.dev/cancel-task"]

    cluster.delete("imagejobs", NAMESPACE, f"task-{task_id}")
    await until(lambda: imagejob(cluster, task_id) is None)

    task = (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()
    assert task["status"] == "cancelled"
    assert await balance_of(client, headers) == before


@pytest.mark.parametrize("operator_overrides", [{"imagejob_ttl_seconds": 1}])
async def test_finished_imagejobs_are_deleted_after_their_ttl_and_the_task_stays(
    client: httpx.AsyncClient, cluster: EmulatedCluster, processes: Processes
) -> None:
    processes.operator()
    processes.worker()
    headers = await sign_up(client, "ttl@example.com")
    task_id = (await submit(client, headers, QUICK, image_bytes())).json()["id"]
    job = await phase(cluster, task_id, {"Succeeded"})
    assert job["spec"]["ttlSecondsAfterFinished"] == 1

    await until(lambda: imagejob(cluster, task_id) is None, within=30)

    task = (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()
    assert task["status"] == "succeeded"  # deleting a finished job cancels nothing


async def test_the_operators_log_lines_carry_the_imagejobs_request_task_and_user(
    client: httpx.AsyncClient, cluster: EmulatedCluster, processes: Processes
) -> None:
    headers = await sign_up(client, "traced@example.com")
    task_id = (await submit(client, headers, QUICK, image_bytes())).json()["id"]
    # As the API writes it when the submitting request had an id (X-Request-ID).
    cluster.patch(
        "imagejobs",
        NAMESPACE,
        f"task-{task_id}",
        {"metadata": {"annotations": {REQUEST_ID_ANNOTATION: "req-7f3a"}}},
    )
    operator = processes.operator()
    job = await phase(cluster, task_id, {"Queued"})

    lines = [json.loads(line) for line in operator.output.splitlines() if line.startswith("{")]
    traced = [line for line in lines if line.get("request_id") == "req-7f3a"]
    assert any("sent to the workers" in line["event"] for line in traced)
    assert {(line["task_id"], line["user_id"]) for line in traced} == {
        (task_id, job["spec"]["userId"])
    }


async def test_the_operator_refuses_to_start_against_an_unmigrated_database(
    settings: Settings, tmp_path: Any, postgres_server: Any
) -> None:
    unmigrated = await postgres_server.create_database("unmigrated")
    bare = settings.model_copy(update={"database_url": unmigrated})
    process = CeleryProcess.start(bare, tmp_path / "refused.log", "operator", ready_mark=None)
    try:
        code = await asyncio.to_thread(process.process.wait, 60)
    finally:
        process.stop()
    assert code != 0
    assert "pixelfleet migrate" in process.output


async def test_an_operator_restart_loses_nothing_and_dispatches_nothing_twice(
    client: httpx.AsyncClient, cluster: EmulatedCluster, processes: Processes
) -> None:
    first = processes.operator()
    headers = await sign_up(client, "restart@example.com")
    ids = [(await submit(client, headers, QUICK, image_bytes())).json()["id"] for _ in range(4)]
    for task_id in ids:
        await phase(cluster, task_id, {"Queued"})

    first.kill()  # mid-flight: the jobs are dispatched, nothing has run yet
    worker = processes.worker()  # the work happens while no operator watches
    for task_id in ids:
        await wait_for_status(client, headers, task_id, {"succeeded"})
    more = [(await submit(client, headers, QUICK, image_bytes())).json()["id"] for _ in range(2)]
    processes.operator()

    for task_id in ids + more:
        job = await phase(cluster, task_id, {"Succeeded"})
        assert job["status"]["attempts"] == 1
    received = re.findall(r"process_task\[([0-9a-f-]{36})\] received", worker.output)
    assert sorted(received) == sorted(ids + more)  # each task sent to the workers once


# A burst the size of a busy minute: enough ImageJobs at once for the operator's handlers to
# overlap and its watch to deliver them in batches. The 200-job load and its timing are in
# bench/operator_burst.py.
BURST = 20


@pytest.mark.parametrize(
    "operator_overrides",
    [
        {
            "operator_resync_seconds": 300.0,
            "signup_credits": 1000,
            "max_active_tasks_per_user": BURST,
            "dispatch_ahead": BURST,  # the whole burst handed out at once (no turns to wait)
        }
    ],
)
async def test_a_burst_of_imagejobs_is_reconciled_without_duplicate_dispatch(
    client: httpx.AsyncClient,
    cluster: EmulatedCluster,
    processes: Processes,
    settings: Settings,
) -> None:
    headers = await sign_up(client, "burst@example.com")
    ids = [
        (await submit(client, headers, QUICK, image_bytes(size=(32, 32)))).json()["id"]
        for _ in range(BURST)
    ]
    processes.operator()

    def all_queued() -> bool:
        try:
            jobs = cluster.objects("imagejobs", NAMESPACE)
        except TimeoutError:  # the emulated API server is busy with the burst: ask again
            return False
        return len(jobs) == BURST and all(
            (j.get("status") or {}).get("phase") == "Queued" for j in jobs
        )

    await asyncio.to_thread(EmulatedCluster.wait, all_queued, 60, 0.1)
    assert settings.redis_url is not None
    messages = waiting_messages(settings.redis_url, settings.celery_queue)
    sent = [json.loads(m)["headers"]["id"] for m in messages]
    assert sorted(sent) == sorted(ids)
