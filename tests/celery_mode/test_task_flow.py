"""A task's whole way in celery mode: API -> Redis -> a real Celery worker -> done."""

from __future__ import annotations

import io
import json
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from PIL import Image
from redis import Redis

from pixelfleet.context import ProcessContext
from pixelfleet.events import EVENTS_STREAM
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.settings import Settings
from tests.api_helpers import balance_of, follow_events, image_bytes, sign_up, submit, whole_ledger
from tests.celery_mode.conftest import Processes, wait_for_status
from tests.harness.celery import CeleryProcess
from tests.harness.image_host import Answer, image_host
from tests.harness.redis import waiting_messages

pytestmark = pytest.mark.celery

THUMBNAIL = {"operations": [{"op": "thumbnail", "width": 64, "height": 64}]}


async def test_a_task_is_processed_by_a_celery_worker_and_debited_once(
    client: httpx.AsyncClient, processes: Processes
) -> None:
    processes.worker()
    headers = await sign_up(client, "celery@example.com")
    before = await balance_of(client, headers)

    accepted = await submit(client, headers, THUMBNAIL, image_bytes(size=(800, 600)))
    assert accepted.status_code == 202, accepted.text
    task = await wait_for_status(client, headers, accepted.json()["id"], {"succeeded"})

    assert task["attempts"] == 1
    result = await client.get(f"/v1/tasks/{task['id']}/result", headers=headers)
    assert result.status_code == 200
    assert Image.open(io.BytesIO(result.content)).size == (64, 48)
    assert await balance_of(client, headers) == before - task["cost"]
    kinds = [entry["kind"] for entry in await whole_ledger(client, headers)]
    assert kinds.count("task_debit") == 1
    assert "task_refund" not in kinds


async def test_an_image_named_by_url_is_fetched_once_by_the_api_never_by_the_worker(
    client: httpx.AsyncClient, ctx: ProcessContext, processes: Processes
) -> None:
    ctx.settings.source_allow_private_urls = True  # the image host is on loopback
    processes.worker()
    headers = await sign_up(client, "celery-url@example.com")
    with image_host() as host:
        url = host.serve("/photo.jpg", Answer(body=image_bytes(size=(800, 600))))
        body = {"source": {"url": url}, "pipeline": THUMBNAIL}
        accepted = await client.post("/v1/tasks", headers=headers, json=body)
        assert accepted.status_code == 202, accepted.text
        task = await wait_for_status(client, headers, accepted.json()["id"], {"succeeded"})
        assert host.requests == ["/photo.jpg"]
    assert (task["source"]["kind"], task["source"]["ref"]) == ("url", url)
    result = await client.get(f"/v1/tasks/{task['id']}/result", headers=headers)
    assert Image.open(io.BytesIO(result.content)).size == (64, 48)


async def test_the_plain_celery_command_runs_pixelfleet_tasks(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    worker = CeleryProcess.start(
        settings,
        tmp_path / "celery.log",
        "-m",
        "celery",
        "-A",
        "pixelfleet.worker.celery_app",
        "worker",
        "--pool=solo",
        f"--queues={settings.celery_queue}",
        program=[sys.executable],
    )
    try:
        headers = await sign_up(client, "plain@example.com")
        accepted = await submit(client, headers, THUMBNAIL, image_bytes(size=(800, 600)))
        task = await wait_for_status(client, headers, accepted.json()["id"], {"succeeded"})
    finally:
        worker.stop()
    assert task["attempts"] == 1


async def test_the_message_carries_the_task_id_and_never_the_image(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    headers = await sign_up(client, "message@example.com")
    picture = image_bytes(size=(1200, 900))
    accepted = await submit(client, headers, THUMBNAIL, picture)
    assert accepted.status_code == 202

    assert settings.redis_url is not None
    messages = waiting_messages(settings.redis_url, settings.celery_queue)
    assert len(messages) == 1
    message = json.loads(messages[0])
    assert message["headers"]["id"] == accepted.json()["id"]
    assert len(messages[0]) < 4096 < len(picture)


async def test_the_event_stream_follows_a_task_in_celery_mode(
    client: httpx.AsyncClient, processes: Processes, settings: Settings
) -> None:
    processes.worker()
    headers = await sign_up(client, "events@example.com")
    accepted = await submit(client, headers, THUMBNAIL, image_bytes(size=(800, 600)))
    task_id = accepted.json()["id"]

    events = await follow_events(client, headers, task_id)

    assert events[-1][0] == "done"
    assert events[-1][1]["status"] == "succeeded"
    assert all(name == "progress" for name, _ in events[:-1])
    # The same story went out on the Redis stream the operator reads.
    assert settings.redis_url is not None
    broker = Redis.from_url(settings.redis_url, decode_responses=True)
    entries = broker.xrange(EVENTS_STREAM)
    broker.close()
    statuses = [fields["status"] for _id, fields in entries if fields["task_id"] == task_id]
    assert statuses[0] == "running"
    assert statuses[-1] == "succeeded"


async def test_a_second_dispatch_of_the_same_task_runs_it_once(
    client: httpx.AsyncClient, ctx: ProcessContext, processes: Processes
) -> None:
    headers = await sign_up(client, "twice@example.com")
    accepted = await submit(client, headers, THUMBNAIL, image_bytes(size=(800, 600)))
    task_id = uuid.UUID(accepted.json()["id"])
    async with ctx.read_sessions() as session:
        task_row = await TaskRepository.from_session(session).get(task_id)
    assert task_row is not None
    await ctx.launcher.dispatch(task_row)
    await ctx.launcher.dispatch(task_row)
    processes.worker()

    task = await wait_for_status(client, headers, str(task_id), {"succeeded"})

    assert task["attempts"] == 1
    assert len(task["outputs"]) == 1
    kinds = [entry["kind"] for entry in await whole_ledger(client, headers)]
    assert kinds.count("task_debit") == 1
