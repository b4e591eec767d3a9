"""A job applied by hand that meets a limit which passes (the account's active tasks, a 429
through the API) is held back and admitted once the limit allows, never rejected for it.
Its own module: the account's quota is one active task here."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api_helpers import balance_of, image_bytes, sign_up
from tests.celery_mode.conftest import Processes
from tests.harness.image_host import Answer, ImageHost
from tests.harness.kubernetes import EmulatedCluster
from tests.operator.conftest import NAMESPACE
from tests.operator.steps import QUICK, apply, bind, until

pytestmark = [pytest.mark.operator, pytest.mark.heavy]

TEAM = "team-q"


@pytest.fixture
def cluster_namespaces() -> tuple[str, ...]:
    return (NAMESPACE, TEAM)


@pytest.fixture
def operator_overrides() -> dict[str, Any]:
    return {"source_allow_private_urls": True, "max_active_tasks_per_user": 1}


def phase_of(cluster: EmulatedCluster, name: str) -> str | None:
    job = cluster.get("imagejobs", TEAM, name) or {}
    return (job.get("status") or {}).get("phase")


async def test_a_job_over_the_active_tasks_quota_waits_and_is_admitted_when_it_frees(
    client: httpx.AsyncClient,
    cluster: EmulatedCluster,
    processes: Processes,
    host: ImageHost,
) -> None:
    processes.operator()  # no worker: an admitted task stays active
    headers = await sign_up(client, "busy-team@example.com")
    bind(cluster, TEAM, "busy-team@example.com", budget=50)
    jpeg = Answer(body=image_bytes(), headers={"Content-Type": "image/jpeg"})
    picture = host.serve("/a.jpg", jpeg)
    for name in ("first", "second"):
        apply(cluster, TEAM, name, source={"url": picture}, pipeline=QUICK)
        if name == "first":
            await until(lambda: phase_of(cluster, "first") == "Queued" or None)

    # The second meets the quota: held back (its handler tries again), not rejected.
    def tried() -> bool | None:
        events = [e.get("reason") for e in cluster.events(TEAM, involving="second")]
        return "HeldBack" in events or phase_of(cluster, "second") is not None or None

    await until(tried, within=30)
    assert phase_of(cluster, "second") is None
    one_charged = await balance_of(client, headers)

    cluster.delete("imagejobs", TEAM, "first")  # its task is cancelled: the quota frees

    await until(lambda: phase_of(cluster, "second") == "Queued" or None, within=60)
    assert await balance_of(client, headers) == one_charged  # one refunded, one charged
