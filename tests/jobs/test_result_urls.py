"""Each output of a task is linked by a signed, expiring URL that needs no credential: it can
stand in `<img src>`. A changed or late URL is a 403 problem; nothing else opens it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from pixelfleet.context import ProcessContext
from pixelfleet.db import utcnow
from pixelfleet.jobs import maintenance
from pixelfleet.jobs.result_urls import ResultUrls
from pixelfleet.models import Task
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import PROBLEM, image_bytes, sign_up, submit

PIPELINE = {
    "operations": [{"op": "resize", "width": 120}],
    "variants": [
        {"name": "small", "output": {"format": "png"}},
        {"name": "web", "output": {"format": "webp"}},
    ],
}


@pytest.fixture
async def done(client: httpx.AsyncClient, ctx: ProcessContext) -> dict[str, Any]:
    headers = await sign_up(client, "linked@example.com")
    task = (await submit(client, headers, PIPELINE, image_bytes("JPEG", (400, 300)))).json()
    assert await drain_queue(ctx) == ["succeeded"]
    read = await client.get(f"/v1/tasks/{task['id']}", headers=headers)
    return {"headers": headers, "task": read.json()}


def assert_refused(response: httpx.Response, slug: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith(f"/{slug}")


async def test_each_output_is_served_by_its_signed_url_without_a_credential(
    client: httpx.AsyncClient, done: dict[str, Any]
) -> None:
    task, headers = done["task"], done["headers"]
    urls = [output["url"] for output in task["outputs"]]
    assert all(url.startswith("/v1/results/") for url in urls)
    assert task["result"]["url"] == urls[0]
    for output in task["outputs"]:
        signed = await client.get(output["url"])  # no Authorization
        owned = await client.get(
            f"/v1/tasks/{task['id']}/result?variant={output['name']}", headers=headers
        )
        assert signed.status_code == 200, signed.text
        assert signed.content == owned.content
        assert signed.headers["content-type"] == output["content_type"]
        assert signed.headers["etag"] == owned.headers["etag"]
        assert signed.headers["cache-control"].startswith("private, max-age=")
        ranged = await client.get(output["url"], headers={"Range": "bytes=0-15"})
        assert (ranged.status_code, ranged.content) == (206, owned.content[:16])
    # The list and the long-poll link them alike.
    listed = (await client.get("/v1/tasks", headers=headers)).json()["items"][0]
    assert [output["url"] for output in listed["outputs"]] == urls


async def test_a_changed_url_is_refused(client: httpx.AsyncClient, done: dict[str, Any]) -> None:
    url: str = done["task"]["result"]["url"]
    header, claims, signature = url.removeprefix("/v1/results/").split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    other = done["task"]["outputs"][1]["url"].removeprefix("/v1/results/").split(".")[1]
    for token in (
        f"{header}.{claims}.{flipped}",  # the signature changed
        f"{header}.{other}.{signature}",  # another output's claims under this signature
        "not-a-token",
        done["headers"]["Authorization"].removeprefix("Bearer "),  # a login is no result URL
    ):
        assert_refused(await client.get(f"/v1/results/{token}"), "result-url-invalid")


async def test_a_late_url_is_refused_and_a_fresh_one_comes_with_the_task(
    client: httpx.AsyncClient, ctx: ProcessContext, done: dict[str, Any]
) -> None:
    task = done["task"]
    yesterday = utcnow() - timedelta(days=1)
    late = ResultUrls(ctx.settings).url(uuid.UUID(task["id"]), "small", yesterday)
    assert_refused(await client.get(late), "result-url-expired")
    fresh = await client.get(f"/v1/tasks/{task['id']}", headers=done["headers"])
    assert (await client.get(fresh.json()["result"]["url"])).status_code == 200


async def test_a_url_lives_its_configured_time_and_is_absolute_under_the_public_url(
    client: httpx.AsyncClient,
    ctx: ProcessContext,
    done: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = ctx.settings.model_copy(
        update={"public_url": "https://img.example", "result_url_ttl_seconds": 600}
    )
    monkeypatch.setattr(ctx, "result_urls", ResultUrls(settings))
    task_id = done["task"]["id"]
    read = (await client.get(f"/v1/tasks/{task_id}", headers=done["headers"])).json()
    url: str = read["result"]["url"]
    assert url.startswith("https://img.example/v1/results/")
    signed = ctx.result_urls.verify(url.rsplit("/", 1)[1])
    lifetime = signed.expires_at - utcnow()
    assert timedelta(seconds=540) < lifetime <= timedelta(seconds=660)
    assert (await client.get(url.removeprefix("https://img.example"))).status_code == 200


async def test_a_url_of_a_result_deleted_since_is_gone(
    client: httpx.AsyncClient, ctx: ProcessContext, done: dict[str, Any]
) -> None:
    url = done["task"]["result"]["url"]
    async with ctx.sessions.begin() as session:
        await session.execute(
            update(Task)
            .where(Task.id == uuid.UUID(done["task"]["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert await maintenance.purge_expired_files(ctx) == 1
    answer = await client.get(url)
    assert answer.status_code == 410
    assert answer.json()["type"].endswith("/result-expired")
