"""`helm uninstall` leaves no ImageJob on the operator's finalizer: the chart's pre-delete hook
runs `pixelfleet release-imagejobs` (here as a real process against the emulated API server,
while a real operator runs). The ImageJobs PixelFleet made are deleted and their queued tasks
cancelled and refunded by the operator; the operator's Deployment is scaled to zero (the test
plays the Deployment controller: the operator's process stops when its Deployment reaches zero);
jobs applied by hand stay, without the finalizer, so deleting them later never hangs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from typing import Any

import httpx
import pytest

from pixelfleet.operator.resources import FINALIZER
from tests.api_helpers import balance_of, image_bytes, sign_up, submit
from tests.celery_mode.conftest import Processes
from tests.harness.celery import CeleryProcess
from tests.harness.image_host import Answer, ImageHost
from tests.harness.kubernetes import EmulatedCluster
from tests.operator.conftest import NAMESPACE
from tests.operator.steps import QUICK, apply, bind, imagejob, phase, until

pytestmark = [pytest.mark.operator, pytest.mark.heavy]

TEAM = "team-z"
OPERATOR = "pixelfleet-operator"
LABELS = {"app.kubernetes.io/component": "operator"}


@pytest.fixture
def cluster_namespaces() -> tuple[str, ...]:
    return (NAMESPACE, TEAM)


@pytest.fixture
def operator_overrides() -> dict[str, Any]:
    return {"source_allow_private_urls": True}


def operator_deployment(cluster: EmulatedCluster, operator: CeleryProcess) -> threading.Event:
    """The operator's Deployment and pod, as the chart makes them; scaling the Deployment to
    zero stops the operator's process and removes its pod, as the Deployment controller would.
    Returns an event set once that happened."""
    cluster.create(
        "deployments",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": OPERATOR},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": LABELS},
                "template": {"metadata": {"labels": LABELS}, "spec": {"containers": []}},
            },
        },
        NAMESPACE,
    )
    cluster.create(
        "pods",
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "operator-0", "labels": LABELS}},
        NAMESPACE,
    )
    stopped = threading.Event()

    def controller() -> None:
        def scaled_to_zero() -> bool | None:
            found = cluster.get("deployments", NAMESPACE, OPERATOR) or {}
            return found.get("spec", {}).get("replicas") == 0 or None

        EmulatedCluster.wait(scaled_to_zero, 120, 0.05)
        operator.terminate()
        cluster.delete("pods", NAMESPACE, "operator-0")
        stopped.set()

    threading.Thread(target=controller, daemon=True).start()
    return stopped


async def test_uninstalling_lets_go_of_every_imagejob_and_refunds_the_queued_tasks(
    client: httpx.AsyncClient,
    cluster: EmulatedCluster,
    processes: Processes,
    host: ImageHost,
) -> None:
    operator = processes.operator()  # no worker: every task stays queued
    stopped = operator_deployment(cluster, operator)
    headers = await sign_up(client, "leaving@example.com")
    made = (await submit(client, headers, QUICK, image_bytes(size=(64, 48)))).json()["id"]
    await phase(cluster, made, {"Queued"})
    bind(cluster, TEAM, "leaving@example.com", budget=50)
    jpeg = Answer(body=image_bytes(), headers={"Content-Type": "image/jpeg"})
    apply(cluster, TEAM, "by-hand", source={"url": host.serve("/a.jpg", jpeg)}, pipeline=QUICK)

    def by_hand() -> dict[str, Any] | None:
        job = cluster.get("imagejobs", TEAM, "by-hand")
        return job if (job or {}).get("status", {}).get("phase") == "Queued" else None

    applied = await until(by_hand)
    assert FINALIZER in applied["metadata"]["finalizers"]
    charged = await balance_of(client, headers)

    released = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "pixelfleet",
            "release-imagejobs",
            "--namespace",
            NAMESPACE,
            "--namespace",
            TEAM,
            "--operator-deployment",
            OPERATOR,
            "--wait-seconds",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert released.returncode == 0, released.stderr
    assert "1 deleted, 1 finalizer(s) removed" in released.stdout
    assert stopped.is_set()
    assert imagejob(cluster, made) is None
    task = (await client.get(f"/v1/tasks/{made}", headers=headers)).json()
    assert task["status"] == "cancelled"  # by the operator, before it was stopped
    left = cluster.get("imagejobs", TEAM, "by-hand")
    assert left is not None
    assert FINALIZER not in (left["metadata"].get("finalizers") or [])
    assert await balance_of(client, headers) == charged + task["cost"]
    cluster.delete("imagejobs", TEAM, "by-hand")  # nothing holds it any more
    assert cluster.get("imagejobs", TEAM, "by-hand") is None
