"""The kubernetes launcher: a task becomes the ImageJob task-<uuid>, annotated with the id of the
request that submitted it; when the cluster cannot be reached the task is still accepted, stays
queued, and the re-dispatch job creates its ImageJob once the cluster answers."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from pixelfleet.api.app import create_app
from pixelfleet.bootstrap import create_context
from pixelfleet.context import ProcessContext
from pixelfleet.jobs import maintenance
from pixelfleet.models import Task
from pixelfleet.observability import log_context
from pixelfleet.operator.resources import REQUEST_ID_ANNOTATION
from pixelfleet.settings import Settings
from tests.api_helpers import image_bytes, sign_up, submit
from tests.harness.image_host import Answer, image_host
from tests.harness.kubernetes import EmulatedCluster
from tests.harness.ports import free_port
from tests.operator.conftest import NAMESPACE

pytestmark = pytest.mark.operator

QUICK = {"operations": [{"op": "grayscale"}], "output": {"format": "png"}}


async def test_a_submitted_task_appears_as_its_imagejob(
    client: httpx.AsyncClient, cluster: EmulatedCluster
) -> None:
    headers = await sign_up(client, "launch@example.com")
    task_id = (await submit(client, headers, QUICK, image_bytes(size=(40, 30)))).json()["id"]

    job = cluster.get("imagejobs", NAMESPACE, f"task-{task_id}")

    assert job is not None
    spec = job["spec"]
    assert (spec["taskId"], spec["ops"], spec["ttlSecondsAfterFinished"]) == (
        task_id,
        "grayscale→png",
        3600,
    )
    assert spec["source"]["contentType"] == "image/jpeg"
    assert (spec["source"]["kind"], spec["source"].get("url")) == ("file", None)
    assert (spec["source"]["width"], spec["source"]["height"]) == (40, 30)
    assert spec["pipeline"]["operations"] == [{"op": "grayscale"}]


async def test_an_imagejob_says_how_its_image_came_and_the_worker_reads_it_from_storage(
    client: httpx.AsyncClient, ctx: ProcessContext, cluster: EmulatedCluster
) -> None:
    ctx.settings.source_allow_private_urls = True  # the image host is on loopback
    headers = await sign_up(client, "by-url-launch@example.com")
    with image_host() as host:
        url = host.serve("/photo.jpg", Answer(body=image_bytes(size=(40, 30))))
        body = {"source": {"url": url}, "pipeline": QUICK}
        by_url = (await client.post("/v1/tasks", headers=headers, json=body)).json()
        again = {"source": {"task": by_url["id"]}, "pipeline": QUICK}
        by_task = (await client.post("/v1/tasks", headers=headers, json=again)).json()
        assert host.requests == ["/photo.jpg"]  # fetched once, by the API

    sources = [
        cluster.get("imagejobs", NAMESPACE, f"task-{task['id']}")["spec"]["source"]
        for task in (by_url, by_task)
    ]
    assert [(source["kind"], source.get("url")) for source in sources] == [
        ("url", url),
        ("task", None),
    ]
    # The workers read the stored copy, whatever the kind: the key of each task's own source.
    assert [source["key"] for source in sources] == [
        f"sources/{by_url['id']}",
        f"sources/{by_task['id']}",
    ]
    assert (by_url["source"]["kind"], by_url["source"]["ref"]) == ("url", url)
    assert (by_task["source"]["kind"], by_task["source"]["ref"]) == ("task", by_url["id"])


def _task() -> Task:
    return Task(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        cost=1,
        pipeline=QUICK,
        source_key="uploads/photo.jpg",
        source_format="jpeg",
        source_width=40,
        source_height=30,
        source_bytes=1200,
        source_kind="file",
    )


async def test_an_imagejob_carries_the_id_of_the_request_that_submitted_its_task(
    ctx: ProcessContext, cluster: EmulatedCluster
) -> None:
    traced, untraced = _task(), _task()

    with log_context.bound(request_id="req-5b1e"):
        await ctx.launcher.dispatch(traced)
    await ctx.launcher.dispatch(untraced)  # upkeep, say: no request behind it

    def annotations(task: Task) -> dict[str, str]:
        job = cluster.get("imagejobs", NAMESPACE, f"task-{task.id}")
        assert job is not None
        return dict(job["metadata"].get("annotations") or {})

    assert annotations(traced)[REQUEST_ID_ANNOTATION] == "req-5b1e"
    assert REQUEST_ID_ANNOTATION not in annotations(untraced)


async def test_a_task_accepted_while_the_cluster_is_away_gets_its_imagejob_later(
    settings: Settings,
    cluster: EmulatedCluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    away_config = tmp_path / "away.yaml"  # a cluster on a port nobody listens on
    away_config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "away", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}
                ],
                "users": [{"name": "away", "user": {}}],
                "contexts": [{"name": "away", "context": {"cluster": "away", "user": "away"}}],
                "current-context": "away",
            }
        )
    )
    live_config = tmp_path / "kubeconfig.yaml"
    monkeypatch.setenv("KUBECONFIG", str(away_config))
    ctx = create_context(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(ctx=ctx))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            headers = await sign_up(http, "away@example.com")
            accepted = await submit(http, headers, QUICK, image_bytes())
            assert accepted.status_code == 202
            task_id = accepted.json()["id"]
            assert (await http.get(f"/v1/tasks/{task_id}", headers=headers)).json()[
                "status"
            ] == "queued"
    finally:
        await ctx.close()
    assert cluster.get("imagejobs", NAMESPACE, f"task-{task_id}") is None

    monkeypatch.setenv("KUBECONFIG", str(live_config))
    later = create_context(settings.model_copy(update={"redispatch_after_seconds": 0.001}))
    try:
        assert await maintenance.redispatch_stale_tasks(later) == 1
    finally:
        await later.close()
    assert cluster.get("imagejobs", NAMESPACE, f"task-{task_id}") is not None
