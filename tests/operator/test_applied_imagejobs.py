"""ImageJobs a platform engineer applies by hand, as `kubectl apply` would send them to the
(emulated) API server: the namespace's CreditBinding names the account to charge and a budget;
a job is admitted, charged and processed on the queue it names, or rejected with a reason and
nothing charged; deleting a queued one cancels and refunds it; a binding shows its spend.

One operator, a worker on the default queue and one on a second queue serve the module, with a
real PostgreSQL, Redis and an image host on loopback (each test has its own namespace and
account)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from kombu.transport import redis as kombu_redis

from pixelfleet.context import ProcessContext
from pixelfleet.jobs import maintenance
from pixelfleet.settings import Settings
from pixelfleet.worker.names import PRIORITY_SEPARATOR
from tests.api_helpers import balance_of, image_bytes, sign_up
from tests.celery_mode.conftest import Processes, eventually
from tests.harness.image_host import Answer, ImageHost, image_host
from tests.harness.kubernetes import EmulatedCluster
from tests.harness.postgres import PostgresServer
from tests.harness.redis import RedisServer, waiting_messages
from tests.operator.conftest import NAMESPACE, operator_settings
from tests.operator.steps import QUICK, apply, bind, until

pytestmark = [pytest.mark.operator, pytest.mark.heavy]

NAMESPACES = (NAMESPACE, *(f"team-{t}" for t in "abcdefghi"), "unbound")
SECOND_QUEUE = "second"
IDLE_QUEUE = "idle"  # no worker takes it: its jobs stay queued


@dataclass
class Platform:
    settings: Settings
    cluster: EmulatedCluster
    host: ImageHost
    picture: str  # a URL the image host serves
    processes: Processes

    def apply(self, namespace: str, name: str, **spec: Any) -> None:
        """An ImageJob of the served picture through the quick pipeline (unless `spec` says
        otherwise), applied by hand."""
        defaults = {"source": {"url": self.picture}, "pipeline": QUICK}
        apply(self.cluster, namespace, name, **{**defaults, **spec})


@pytest.fixture(scope="module")
def host() -> Iterator[ImageHost]:
    with image_host() as serving:
        yield serving


@pytest.fixture(scope="module")
async def platform(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
    postgres_template: str,
    redis_server: RedisServer,
    host: ImageHost,
) -> AsyncIterator[Platform]:
    directory = tmp_path_factory.mktemp("applied")
    name = f"test_{uuid.uuid4().hex[:16]}"
    database_url = await postgres_server.create_database(name, template=postgres_template)
    picture = host.serve(
        "/photo.jpg",
        Answer(body=image_bytes(size=(800, 600)), headers={"Content-Type": "image/jpeg"}),
    )
    with EmulatedCluster(namespaces=NAMESPACES) as cluster, pytest.MonkeyPatch.context() as env:
        env.setenv("KUBECONFIG", str(cluster.kubeconfig(directory)))
        settings = operator_settings(
            database_url, directory, redis_server, {"source_allow_private_urls": True}
        )
        processes = Processes(settings, directory)
        try:
            processes.operator()
            processes.worker()
            processes.worker(queue=queue_name(settings, SECOND_QUEUE))
            yield Platform(settings, cluster, host, picture, processes)
        finally:
            processes.stop_all()
    await postgres_server.drop_database(name)


@pytest.fixture
def settings(platform: Platform) -> Settings:
    return platform.settings


def queue_name(settings: Settings, suffix: str) -> str:
    """A queue of this module's own (Redis is shared with other modules)."""
    return f"{settings.celery_queue}-{suffix}"


async def settled(
    cluster: EmulatedCluster, namespace: str, name: str, phases: set[str]
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        job = cluster.get("imagejobs", namespace, name)
        if job is not None and (job.get("status") or {}).get("phase") in phases:
            return job
        return None

    return await until(reached)


async def spent(cluster: EmulatedCluster, namespace: str, credits: int, jobs: int) -> None:
    def shows() -> bool | None:
        binding = cluster.get("creditbindings", namespace, "billing") or {}
        status = binding.get("status") or {}
        return (status.get("spentCredits"), status.get("admittedJobs")) == (credits, jobs) or None

    await until(shows)


def conditions(job: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in job["status"]["conditions"]}


def warnings(cluster: EmulatedCluster, namespace: str, name: str) -> list[str]:
    return [
        e.get("reason", "")
        for e in cluster.events(namespace, involving=name)
        if e.get("type") == "Warning"
    ]


async def waiting_job(
    client: httpx.AsyncClient, platform: Platform, namespace: str, name: str, **spec: Any
) -> tuple[dict[str, str], dict[str, Any]]:
    """A new account bound to `namespace` (50 credits of budget), and its job `name` admitted
    on the queue no worker takes: the account's headers and the job, Queued."""
    email = f"{namespace}@example.com"
    headers = await sign_up(client, email)
    bind(platform.cluster, namespace, email, budget=50)
    platform.apply(namespace, name, queue=queue_name(platform.settings, IDLE_QUEUE), **spec)
    job = await settled(platform.cluster, namespace, name, {"Queued", "Rejected"})
    assert job["status"]["phase"] == "Queued"
    return headers, job


async def test_a_job_applied_by_hand_is_admitted_charged_and_served_by_signed_url(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    cluster = platform.cluster
    headers = await sign_up(client, "team-a@example.com")
    bind(cluster, "team-a", "team-a@example.com", budget=50)

    platform.apply("team-a", "hero")
    job = await settled(cluster, "team-a", "hero", {"Succeeded", "Failed", "Rejected"})

    status = job["status"]
    assert status["phase"] == "Succeeded", status
    assert conditions(job)["Admitted"] == ("True", "Admitted")
    task = (await client.get(f"/v1/tasks/{status['taskId']}", headers=headers)).json()
    assert (task["status"], task["source"]["kind"]) == ("succeeded", "url")
    assert await balance_of(client, headers) == 100 - task["cost"]
    [output] = status["outputs"]
    served = await client.get(output["url"])  # no credential
    assert (served.status_code, served.headers["content-type"]) == (200, "image/webp")
    assert "Admitted" in [e.get("reason") for e in cluster.events("team-a", involving="hero")]
    await spent(cluster, "team-a", task["cost"], 1)
    binding = cluster.get("creditbindings", "team-a", "billing") or {}
    [ready] = binding["status"]["conditions"]
    assert (ready["type"], ready["status"]) == ("Ready", "True")

    # Its status drifts (a hand edit, a lost patch): the resync puts it back from the record.
    cluster.patch(
        "imagejobs", "team-a", "hero", {"status": {"progress": 3}}, subresource="status"
    )

    def repaired() -> bool | None:
        job = cluster.get("imagejobs", "team-a", "hero") or {}
        return job.get("status", {}).get("progress") == 100 or None

    await until(repaired)


async def test_a_job_without_a_binding_is_rejected_and_nothing_is_charged(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    cluster = platform.cluster
    platform.apply("unbound", "orphan")

    job = await settled(cluster, "unbound", "orphan", {"Rejected", "Succeeded", "Failed"})

    assert job["status"]["phase"] == "Rejected"
    assert conditions(job)["Admitted"] == ("False", "NoCreditBinding")
    assert "taskId" not in job["status"]
    assert "NoCreditBinding" in warnings(cluster, "unbound", "orphan")


async def test_a_job_the_budget_cannot_pay_for_is_rejected_and_nothing_is_charged(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    cluster = platform.cluster
    headers = await sign_up(client, "team-b@example.com")
    bind(cluster, "team-b", "team-b@example.com", budget=0)

    platform.apply("team-b", "too-dear")
    job = await settled(cluster, "team-b", "too-dear", {"Rejected", "Succeeded", "Failed"})

    assert job["status"]["phase"] == "Rejected"
    assert conditions(job)["Admitted"] == ("False", "BudgetExceeded")
    assert "budget team-b/billing has 0 left of 0" in job["status"]["message"]
    assert await balance_of(client, headers) == 100
    await spent(cluster, "team-b", 0, 0)


async def test_a_binding_to_no_account_rejects_its_jobs(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    cluster = platform.cluster
    bind(cluster, "team-c", "nobody@example.com", budget=10)

    platform.apply("team-c", "nobodys")
    job = await settled(cluster, "team-c", "nobodys", {"Rejected", "Succeeded", "Failed"})

    assert conditions(job)["Admitted"] == ("False", "AccountNotFound")


async def test_a_job_whose_source_is_refused_is_rejected_with_the_apis_reason(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    cluster = platform.cluster
    headers = await sign_up(client, "team-d@example.com")
    bind(cluster, "team-d", "team-d@example.com", budget=50)
    missing = platform.host.url("/missing.jpg")  # the host answers 404

    platform.apply("team-d", "broken-link", source={"url": missing})
    job = await settled(cluster, "team-d", "broken-link", {"Rejected", "Succeeded", "Failed"})

    assert conditions(job)["Admitted"][0] == "False"
    assert conditions(job)["Admitted"][1].startswith("Source")
    assert await balance_of(client, headers) == 100


async def test_jobs_go_to_the_queue_they_name_and_wait_there_by_priority(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    cluster, settings = platform.cluster, platform.settings
    headers = await sign_up(client, "team-e@example.com")
    bind(cluster, "team-e", "team-e@example.com", budget=50)

    # A queue with a worker of its own takes the job.
    second = queue_name(settings, SECOND_QUEUE)
    platform.apply("team-e", "routed", queue=second)
    routed = await settled(cluster, "team-e", "routed", {"Succeeded", "Failed", "Rejected"})
    assert routed["status"]["phase"] == "Succeeded"

    # A queue nobody serves keeps its jobs, higher priorities first in line.
    idle = queue_name(settings, IDLE_QUEUE)
    for name, priority in (("low", 1), ("high", 8), ("middle", 5)):
        platform.apply("team-e", name, queue=idle, priority=priority)
    jobs = {}
    for name in ("low", "high", "middle"):
        jobs[name] = await settled(cluster, "team-e", name, {"Queued", "Rejected"})
        assert jobs[name]["status"]["phase"] == "Queued"
    assert settings.redis_url is not None
    line = [
        json.loads(m)["headers"]["id"] for m in waiting_messages(settings.redis_url, idle)
    ]
    assert line == [jobs[name]["status"]["taskId"] for name in ("high", "middle", "low")]
    cost = (await client.get(f"/v1/tasks/{line[0]}", headers=headers)).json()["cost"]
    await spent(cluster, "team-e", 4 * cost, 4)

    # Deleting a queued job cancels its task and gives its credits back.
    before = await balance_of(client, headers)
    cluster.delete("imagejobs", "team-e", "low")
    await until(lambda: cluster.get("imagejobs", "team-e", "low") is None or None)
    task = (await client.get(f"/v1/tasks/{line[2]}", headers=headers)).json()
    assert task["status"] == "cancelled"
    assert await balance_of(client, headers) == before + cost
    await spent(cluster, "team-e", 3 * cost, 4)

    # A worker that comes to a queue of waiting jobs takes the higher priority first.
    ordered = queue_name(settings, "ordered")
    for name, priority in (("later", 2), ("sooner", 6)):
        platform.apply("team-e", name, queue=ordered, priority=priority)
        await settled(cluster, "team-e", name, {"Queued"})
    platform.processes.worker(queue=ordered)
    later, sooner = [
        await settled(cluster, "team-e", name, {"Succeeded", "Failed"})
        for name in ("later", "sooner")
    ]
    assert (later["status"]["phase"], sooner["status"]["phase"]) == ("Succeeded", "Succeeded")
    started = {
        name: datetime.fromisoformat(job["status"]["startedAt"])
        for name, job in (("later", later), ("sooner", sooner))
    }
    assert started["sooner"] < started["later"]


async def test_a_job_past_its_deadline_fails_as_a_kubernetes_job_does_and_is_refunded(
    client: httpx.AsyncClient, ctx: ProcessContext, platform: Platform
) -> None:
    cluster = platform.cluster
    headers, _ = await waiting_job(client, platform, "team-f", "hurried", activeDeadlineSeconds=1)

    async def failed_by_the_upkeep() -> bool:  # as beat runs it, every scheduler interval
        return await maintenance.fail_overdue_tasks(ctx) > 0

    await eventually(failed_by_the_upkeep, within=30, interval=0.2)
    job = await settled(cluster, "team-f", "hurried", {"Failed"})

    assert conditions(job)["Succeeded"] == ("False", "DeadlineExceeded")
    assert job["status"]["message"].startswith("deadline-exceeded: ")
    assert await balance_of(client, headers) == 100
    await spent(cluster, "team-f", 0, 1)


async def test_jobs_applied_at_once_never_spend_past_their_budget(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    cluster, settings = platform.cluster, platform.settings
    headers = await sign_up(client, "team-g@example.com")
    budget = 5
    bind(cluster, "team-g", "team-g@example.com", budget=budget)
    names = [f"batch-{n}" for n in range(8)]
    for name in names:  # the operator handles them side by side
        platform.apply("team-g", name, queue=queue_name(settings, IDLE_QUEUE))
    jobs = [await settled(cluster, "team-g", name, {"Queued", "Rejected"}) for name in names]

    admitted = [job for job in jobs if job["status"]["phase"] == "Queued"]
    rejected = [job for job in jobs if job["status"]["phase"] == "Rejected"]
    task = (await client.get(f"/v1/tasks/{admitted[0]['status']['taskId']}", headers=headers))
    cost = task.json()["cost"]
    assert len(admitted) == budget // cost
    assert all(conditions(job)["Admitted"][1] == "BudgetExceeded" for job in rejected)
    assert await balance_of(client, headers) == 100 - len(admitted) * cost
    await spent(cluster, "team-g", len(admitted) * cost, len(admitted))


async def test_a_job_applied_by_hand_cannot_reach_another_accounts_task(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    cluster = platform.cluster
    owner, owned = await waiting_job(client, platform, "team-h", "owned")
    task_id = owned["status"]["taskId"]

    # Someone who may apply ImageJobs elsewhere names that task, as PixelFleet's own jobs do.
    apply(
        cluster,
        "team-g",
        "not-mine",
        taskId=task_id,
        userId=str(uuid.uuid4()),
        source={
            "key": f"sources/{task_id}",
            "contentType": "image/jpeg",
            "bytes": 1,
            "width": 1,
            "height": 1,
        },
        pipeline=QUICK,
    )
    refused = await settled(cluster, "team-g", "not-mine", {"Failed", "Queued", "Succeeded"})
    assert refused["status"]["phase"] == "Failed"
    assert "taskId belongs to the ImageJobs PixelFleet makes" in refused["status"]["message"]
    assert "InvalidSpec" in warnings(cluster, "team-g", "not-mine")

    cluster.delete("imagejobs", "team-g", "not-mine")
    await until(lambda: cluster.get("imagejobs", "team-g", "not-mine") is None or None)
    task = (await client.get(f"/v1/tasks/{task_id}", headers=owner)).json()
    assert task["status"] == "queued"  # not cancelled by someone else's deletion


async def test_a_job_deleted_before_its_status_named_its_task_still_cancels_it(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    cluster = platform.cluster
    headers, queued = await waiting_job(client, platform, "team-i", "quick-delete")
    task_id = queued["status"]["taskId"]
    # As if the status write after the admission's commit had been lost.
    cluster.patch(
        "imagejobs", "team-i", "quick-delete", {"status": {"taskId": None}}, subresource="status"
    )

    cluster.delete("imagejobs", "team-i", "quick-delete")

    await until(lambda: cluster.get("imagejobs", "team-i", "quick-delete") is None or None)
    task = (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()
    assert task["status"] == "cancelled"
    assert await balance_of(client, headers) == 100


def test_the_broker_lists_are_named_as_kombu_names_them() -> None:
    """A priority's list is the queue's name, kombu's separator and the broker's priority."""
    assert kombu_redis.Channel.sep == PRIORITY_SEPARATOR
