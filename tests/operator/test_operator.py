"""The operator as a platform engineer sees it: tasks submitted through the API appear as
ImageJobs whose status follows the work, deleting one cancels its task, finished ones go away
after their TTL, its log lines name the request, task and user, and restarts or bursts neither
lose nor repeat work."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest
from redis import Redis

from pixelfleet.operator.resources import REQUEST_ID_ANNOTATION
from pixelfleet.settings import Settings
from tests.api_helpers import balance_of, image_bytes, noise_png, sign_up, submit, truncated_jpeg
from tests.celery_mode.conftest import Processes, wait_for_status
from tests.harness.celery import CeleryProcess
from tests.harness.cpu import wait_until_idle
from tests.harness.kubernetes import EmulatedCluster
from tests.operator.conftest import NAMESPACE

pytestmark = pytest.mark.operator

T = TypeVar("T")
QUICK = {
    "operations": [{"op": "thumbnail", "width": 64, "height": 64}],
    "output": {"format": "webp"},
}
SLOW = {"output": {"format": "avif", "quality": 90}}


def _job(cluster: EmulatedCluster, task_id: str) -> dict[str, Any] | None:
    return cluster.get("imagejobs", NAMESPACE, f"task-{task_id}")


async def _until(condition: Callable[[], T | None], within: float = 60.0) -> T:
    return await asyncio.to_thread(EmulatedCluster.wait, condition, within, 0.05)


async def _phase(
    cluster: EmulatedCluster, task_id: str, phases: set[str], within: float = 60.0
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        job = _job(cluster, task_id)
        if job is not None and (job.get("status") or {}).get("phase") in phases:
            return job
        return None

    return await _until(reached, within)


def _reasons(cluster: EmulatedCluster, task_id: str) -> list[str]:
    return [e.get("reason", "") for e in cluster.events(NAMESPACE, involving=f"task-{task_id}")]


async def test_a_task_submitted_through_the_api_ends_with_its_imagejob_succeeded(
    client: httpx.AsyncClient, cluster: EmulatedCluster, processes: Processes
) -> None:
    processes.operator()
    processes.worker()
    headers = await sign_up(client, "k8s@example.com")

    task_id = (await submit(client, headers, QUICK, image_bytes(size=(800, 600)))).json()["id"]
    job = await _phase(cluster, task_id, {"Succeeded", "Failed"})

    assert job["spec"]["taskId"] == task_id
    assert job["spec"]["ops"] == "thumbnail→webp"
    status = job["status"]
    assert (status["phase"], status["progress"], status["attempts"]) == ("Succeeded", 100, 1)
    assert status["outputs"] == [
        {
            "name": "default",
            "format": "webp",
            "width": 64,
            "height": 48,
            "bytes": status["outputs"][0]["bytes"],
        }
    ]
    assert status["durationMs"] >= 0
    assert status["finishedAt"] is not None
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Succeeded"]["status"] == "True"
    assert conditions["Succeeded"]["observedGeneration"] == job["metadata"]["generation"]
    await _until(lambda: {"Started", "Succeeded"} <= set(_reasons(cluster, task_id)))


async def test_progress_shows_in_the_status_while_the_task_runs(
    client: httpx.AsyncClient, cluster: EmulatedCluster, processes: Processes
) -> None:
    processes.operator()
    processes.worker()
    headers = await sign_up(client, "progress@example.com")
    task_id = (await submit(client, headers, SLOW, noise_png((2000, 1500)))).json()["id"]

    running = await _phase(cluster, task_id, {"Running"})
    assert running["status"]["worker"].startswith("celery@")
    assert running["status"]["startedAt"] is not None
    seen = await _until(
        lambda: (j := _job(cluster, task_id)) and j["status"].get("progress", 0) > 0 and j
    )
    assert seen["status"]["stage"]
    await _phase(cluster, task_id, {"Succeeded"})


async def test_a_failing_image_ends_failed_with_a_message_and_a_refund(
    client: httpx.AsyncClient, cluster: EmulatedCluster, processes: Processes
) -> None:
    processes.operator()
    processes.worker()
    headers = await sign_up(client, "broken@example.com")
    before = await balance_of(client, headers)

    task_id = (await submit(client, headers, QUICK, truncated_jpeg())).json()["id"]
    job = await _phase(cluster, task_id, {"Failed", "Succeeded"})

    assert job["status"]["phase"] == "Failed"
    assert job["status"]["message"]
    assert await balance_of(client, headers) == before
    await _until(lambda: "Failed" in _reasons(cluster, task_id))
    failures = [
        e for e in cluster.events(NAMESPACE, involving=f"task-{task_id}") if e["reason"] == "Failed"
    ]
    assert failures[0]["type"] == "Warning"


async def test_deleting_an_imagejob_cancels_and_refunds_its_queued_task(
    client: httpx.AsyncClient, cluster: EmulatedCluster, processes: Processes
) -> None:
    processes.operator()  # no worker: the task waits in the queue
    headers = await sign_up(client, "delete@example.com")
    before = await balance_of(client, headers)
    task_id = (await submit(client, headers, QUICK, image_bytes())).json()["id"]
    job = await _phase(cluster, task_id, {"Queued"})
    assert job["metadata"]["finalizers"] == ["pixelfleet.dev/cancel-task"]

    cluster.delete("imagejobs", NAMESPACE, f"task-{task_id}")
    await _until(lambda: _job(cluster, task_id) is None)

    task = (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()
    assert task["status"] == "cancelled"
    assert await balance_of(client, headers) == before


async def test_deleting_the_imagejob_of_a_running_task_stops_its_work_and_lets_the_job_go(
    client: httpx.AsyncClient, cluster: EmulatedCluster, processes: Processes
) -> None:
    processes.operator()
    worker = processes.worker()
    headers = await sign_up(client, "stop@example.com")
    before = await balance_of(client, headers)
    task_id = (await submit(client, headers, SLOW, noise_png((2000, 1500)))).json()["id"]
    await _phase(cluster, task_id, {"Running"})

    cluster.delete("imagejobs", NAMESPACE, f"task-{task_id}")
    await _until(lambda: _job(cluster, task_id) is None)  # its finalizer was released
    await asyncio.to_thread(wait_until_idle, worker.process.pid, within=2.0)

    task = (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()
    assert (task["status"], task["outputs"]) == ("cancelled", [])
    assert await balance_of(client, headers) == before - task["cost"]  # it had started


@pytest.mark.parametrize("operator_overrides", [{"imagejob_ttl_seconds": 1}])
async def test_finished_imagejobs_are_deleted_after_their_ttl_and_the_task_stays(
    client: httpx.AsyncClient, cluster: EmulatedCluster, processes: Processes
) -> None:
    processes.operator()
    processes.worker()
    headers = await sign_up(client, "ttl@example.com")
    task_id = (await submit(client, headers, QUICK, image_bytes())).json()["id"]
    job = await _phase(cluster, task_id, {"Succeeded"})
    assert job["spec"]["ttlSecondsAfterFinished"] == 1

    await _until(lambda: _job(cluster, task_id) is None, within=30)

    task = (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()
    assert task["status"] == "succeeded"  # deleting a finished job cancels nothing


async def test_a_malformed_imagejob_is_refused_with_a_clear_message(
    cluster: EmulatedCluster, processes: Processes
) -> None:
    processes.operator()
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

    def refusal() -> str | None:
        for event in cluster.events(NAMESPACE, involving="handmade"):
            if "Invalid ImageJob spec" in event.get("message", ""):
                return str(event["message"])
        return None

    message = await _until(refusal, within=30)
    assert "taskId" in message
    assert "source" in message
    job = cluster.get("imagejobs", NAMESPACE, "handmade")
    assert job is not None
    assert job["status"]["phase"] == "Failed"
    assert job["status"]["message"] == message


async def test_an_imagejob_naming_a_task_pixelfleet_does_not_know_is_refused(
    cluster: EmulatedCluster, processes: Processes
) -> None:
    processes.operator()
    unknown = "0b7a9d2e-5c1f-4e8a-9b3d-2f6c8e1a4d70"
    cluster.create(
        "imagejobs",
        {
            "apiVersion": "pixelfleet.dev/v1alpha1",
            "kind": "ImageJob",
            "metadata": {"name": f"task-{unknown}"},
            "spec": {
                "taskId": unknown,
                "userId": "u",
                "source": {
                    "key": "uploads/x",
                    "contentType": "image/png",
                    "bytes": 1,
                    "width": 1,
                    "height": 1,
                },
                "pipeline": {},
            },
        },
        NAMESPACE,
    )

    job = await _phase(cluster, unknown, {"Failed"}, within=30)
    assert job["status"]["message"] == f"PixelFleet has no task {unknown}."
    assert "TaskNotFound" in _reasons(cluster, unknown)


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
    job = await _phase(cluster, task_id, {"Queued"})

    lines = [json.loads(line) for line in operator.output.splitlines() if line.startswith("{")]
    traced = [line for line in lines if line.get("request_id") == "req-7f3a"]
    assert any("sent to the workers" in line["event"] for line in traced)
    assert {(line["task_id"], line["user_id"]) for line in traced} == {
        (task_id, job["spec"]["userId"])
    }


async def test_the_operator_serves_a_liveness_probe(
    settings: Settings, processes: Processes
) -> None:
    processes.operator()
    async with httpx.AsyncClient() as http:
        probe = await http.get(f"http://127.0.0.1:{settings.operator_liveness_port}/healthz")
    assert probe.status_code == 200


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
        await _phase(cluster, task_id, {"Queued"})

    first.kill()  # mid-flight: the jobs are dispatched, nothing has run yet
    worker = processes.worker()  # the work happens while no operator watches
    for task_id in ids:
        await wait_for_status(client, headers, task_id, {"succeeded"})
    more = [(await submit(client, headers, QUICK, image_bytes())).json()["id"] for _ in range(2)]
    processes.operator()

    for task_id in ids + more:
        job = await _phase(cluster, task_id, {"Succeeded"})
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
    broker = Redis.from_url(settings.redis_url)
    messages = broker.lrange(settings.celery_queue, 0, -1)
    broker.close()
    sent = [json.loads(m)["headers"]["id"] for m in messages]
    assert sorted(sent) == sorted(ids)
