"""The operator as a platform engineer sees it: tasks submitted through the API appear as
ImageJobs whose status follows the work, deleting one stops its task, and ImageJobs it cannot
act on are refused with a reason. One operator and one worker serve the whole module (each test
has its own user and ImageJobs); tests/operator/test_operator_restarts.py starts an operator per
test where the test is about its start, its settings or its restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pixelfleet.settings import Settings
from tests.api_helpers import balance_of, image_bytes, noise_png, sign_up, submit, truncated_jpeg
from tests.celery_mode.conftest import Processes
from tests.harness.celery import CeleryProcess
from tests.harness.cpu import wait_until_idle
from tests.harness.kubernetes import EmulatedCluster
from tests.harness.postgres import PostgresServer
from tests.harness.redis import RedisServer
from tests.operator.conftest import NAMESPACE, operator_settings
from tests.operator.steps import QUICK, SLOW, imagejob, phase, reasons, until

pytestmark = [pytest.mark.operator, pytest.mark.heavy]


@dataclass
class Platform:
    settings: Settings
    cluster: EmulatedCluster
    worker: CeleryProcess


@pytest.fixture(scope="module")
async def platform(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
    postgres_template: str,
    redis_server: RedisServer,
) -> AsyncIterator[Platform]:
    """The emulated cluster, a database, a running operator and a running worker."""
    directory = tmp_path_factory.mktemp("operator")
    name = f"test_{uuid.uuid4().hex[:16]}"
    database_url = await postgres_server.create_database(name, template=postgres_template)
    with EmulatedCluster(namespaces=(NAMESPACE,)) as cluster, pytest.MonkeyPatch.context() as env:
        # Every process here (the API in-process, the worker, the operator) finds it this way.
        env.setenv("KUBECONFIG", str(cluster.kubeconfig(directory)))
        settings = operator_settings(database_url, directory, redis_server)
        processes = Processes(settings, directory)
        try:
            processes.operator()
            worker = processes.worker()
            yield Platform(settings, cluster, worker)
        finally:
            processes.stop_all()
    await postgres_server.drop_database(name)


@pytest.fixture
def settings(platform: Platform) -> Settings:
    return platform.settings


@pytest.fixture
def cluster(platform: Platform) -> EmulatedCluster:
    return platform.cluster


async def test_a_task_submitted_through_the_api_ends_with_its_imagejob_succeeded(
    client: httpx.AsyncClient, cluster: EmulatedCluster
) -> None:
    headers = await sign_up(client, "k8s@example.com")

    task_id = (await submit(client, headers, QUICK, image_bytes(size=(800, 600)))).json()["id"]
    job = await phase(cluster, task_id, {"Succeeded", "Failed"})

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
            "url": status["outputs"][0]["url"],
        }
    ]
    # The output's signed URL serves the image to whoever holds it, with no credential.
    served = await client.get(status["outputs"][0]["url"])
    assert (served.status_code, served.headers["content-type"]) == (200, "image/webp")
    assert len(served.content) == status["outputs"][0]["bytes"]
    assert status["taskId"] == task_id
    assert status["durationMs"] >= 0
    assert status["finishedAt"] is not None
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Succeeded"]["status"] == "True"
    assert conditions["Succeeded"]["observedGeneration"] == job["metadata"]["generation"]
    await until(lambda: {"Started", "Succeeded"} <= set(reasons(cluster, task_id)))


async def test_progress_shows_in_the_status_while_the_task_runs(
    client: httpx.AsyncClient, cluster: EmulatedCluster
) -> None:
    headers = await sign_up(client, "progress@example.com")
    task_id = (await submit(client, headers, SLOW, noise_png((2000, 1500)))).json()["id"]

    running = await phase(cluster, task_id, {"Running"})
    assert running["status"]["worker"].startswith("celery@")
    assert running["status"]["startedAt"] is not None
    seen = await until(
        lambda: (j := imagejob(cluster, task_id)) and j["status"].get("progress", 0) > 0 and j
    )
    assert seen["status"]["stage"]
    await phase(cluster, task_id, {"Succeeded"})


async def test_a_failing_image_ends_failed_with_a_message_and_a_refund(
    client: httpx.AsyncClient, cluster: EmulatedCluster
) -> None:
    headers = await sign_up(client, "broken@example.com")
    before = await balance_of(client, headers)

    task_id = (await submit(client, headers, QUICK, truncated_jpeg())).json()["id"]
    job = await phase(cluster, task_id, {"Failed", "Succeeded"})

    assert job["status"]["phase"] == "Failed"
    assert job["status"]["message"]
    assert await balance_of(client, headers) == before
    await until(lambda: "Failed" in reasons(cluster, task_id))
    failures = [
        e for e in cluster.events(NAMESPACE, involving=f"task-{task_id}") if e["reason"] == "Failed"
    ]
    assert failures[0]["type"] == "Warning"


async def test_a_malformed_imagejob_is_refused_with_a_clear_message(
    cluster: EmulatedCluster,
) -> None:
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

    message = await until(refusal, within=30)
    assert "taskId" in message
    assert "source" in message

    def phased() -> dict[str, Any] | None:  # the Event is posted first, then the status
        job = cluster.get("imagejobs", NAMESPACE, "handmade")
        return job if job is not None and (job.get("status") or {}).get("phase") else None

    job = await until(phased, within=30)
    assert job["status"]["phase"] == "Failed"
    assert job["status"]["message"] == message


async def test_an_imagejob_naming_a_task_pixelfleet_does_not_know_is_refused(
    cluster: EmulatedCluster,
) -> None:
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

    job = await phase(cluster, unknown, {"Failed"}, within=30)
    assert job["status"]["message"] == f"PixelFleet has no task {unknown}."
    assert "TaskNotFound" in reasons(cluster, unknown)


async def test_the_operator_serves_a_liveness_probe(settings: Settings) -> None:
    async with httpx.AsyncClient() as http:
        probe = await http.get(f"http://127.0.0.1:{settings.operator_liveness_port}/healthz")
    assert probe.status_code == 200


async def test_deleting_the_imagejob_of_a_running_task_stops_its_work_and_lets_the_job_go(
    client: httpx.AsyncClient, cluster: EmulatedCluster, platform: Platform
) -> None:
    headers = await sign_up(client, "stop@example.com")
    before = await balance_of(client, headers)
    task_id = (await submit(client, headers, SLOW, noise_png((2000, 1500)))).json()["id"]
    await phase(cluster, task_id, {"Running"})

    cluster.delete("imagejobs", NAMESPACE, f"task-{task_id}")
    await until(lambda: imagejob(cluster, task_id) is None)  # its finalizer was released
    await asyncio.to_thread(wait_until_idle, platform.worker.process.pid, within=2.0)

    task = (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()
    assert (task["status"], task["outputs"]) == ("cancelled", [])
    assert await balance_of(client, headers) == before - task["cost"]  # it had started
