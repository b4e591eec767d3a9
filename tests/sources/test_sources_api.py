"""`POST /v1/tasks` with a JSON body naming its image: a URL the API fetches (from loopback image
hosts here), an earlier task's source, or an asset. Nothing refused is charged or stored."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from pixelfleet.context import ProcessContext
from pixelfleet.db import utcnow
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.storage import LocalStorage
from pixelfleet.storage.local import STAGING_DIR
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import PROBLEM, balance_of, image_bytes, sign_up, submit
from tests.harness.image_host import Answer, ImageHost, image_host

# Stored sources are read as the caller: those tests run on PostgreSQL too (row-level security).
STORED = pytest.mark.both_backends

IMAGE = image_bytes("JPEG", (320, 240))
GRAYSCALE = {"operations": [{"op": "grayscale"}], "output": {"format": "png"}}


@pytest.fixture
def host() -> Iterator[ImageHost]:
    with image_host() as serving:
        yield serving


@pytest.fixture
def fetching(ctx: ProcessContext) -> ProcessContext:
    """The context with loopback sources allowed (the image hosts here are on loopback)."""
    ctx.settings.source_allow_private_urls = True
    return ctx


async def submit_json(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> httpx.Response:
    return await client.post("/v1/tasks", headers=headers, json=body)


def _files(ctx: ProcessContext, folder: str) -> list[Path]:
    assert isinstance(ctx.storage, LocalStorage)
    where = ctx.storage.root / folder
    return list(where.iterdir()) if where.exists() else []


async def test_an_image_named_by_url_is_fetched_charged_and_processed(
    client: httpx.AsyncClient, fetching: ProcessContext, host: ImageHost
) -> None:
    headers = await sign_up(client, "by-url@example.com")
    url = host.serve("/photo.jpg", Answer(body=IMAGE, headers={"Content-Type": "image/jpeg"}))
    response = await submit_json(client, headers, {"source": {"url": url}, "pipeline": GRAYSCALE})
    assert response.status_code == 202, response.text
    task = response.json()
    assert await balance_of(client, headers) == 100 - task["cost"]
    assert host.requests == ["/photo.jpg"]
    assert await drain_queue(fetching) == ["succeeded"]
    [source] = _files(fetching, "sources")
    assert source.read_bytes() == IMAGE


@pytest.mark.parametrize(
    ("answer", "status", "slug"),
    [
        pytest.param(Answer(404, b"gone"), 422, "source-unreachable", id="not-found"),
        pytest.param(Answer(body=IMAGE + b"\0" * 60_000), 422, "source-too-large", id="huge"),
        pytest.param(Answer(body=b"<html></html>"), 415, "unsupported-media-type", id="a-page"),
    ],
)
async def test_a_url_that_gives_no_usable_image_is_refused_and_nothing_charged(
    client: httpx.AsyncClient,
    fetching: ProcessContext,
    host: ImageHost,
    answer: Answer,
    status: int,
    slug: str,
) -> None:
    fetching.settings.max_upload_bytes = 50_000
    headers = await sign_up(client, f"{slug}@example.com")
    url = host.serve("/x", answer)
    response = await submit_json(client, headers, {"source": {"url": url}})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith(f"/{slug}")
    assert await balance_of(client, headers) == 100
    assert _files(fetching, "sources") == []
    assert _files(fetching, STAGING_DIR) == []


async def test_a_url_on_a_private_address_is_refused_without_being_fetched(
    client: httpx.AsyncClient, ctx: ProcessContext, host: ImageHost
) -> None:
    headers = await sign_up(client, "ssrf@example.com")
    url = host.serve("/photo.jpg", Answer(body=IMAGE))
    response = await submit_json(client, headers, {"source": {"url": url}})
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"].endswith("/source-refused")
    assert [error["field"] for error in problem["errors"]] == ["source.url"]
    assert host.requests == []
    assert await balance_of(client, headers) == 100


@STORED
async def test_a_new_pipeline_runs_on_an_earlier_task_s_source_without_a_new_upload(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "again@example.com")
    first = (await submit(client, headers, GRAYSCALE, IMAGE)).json()
    again = await submit_json(
        client,
        headers,
        {"source": {"task": first["id"]}, "pipeline": {"operations": [{"op": "flip"}]}},
    )
    assert again.status_code == 202, again.text
    assert await drain_queue(ctx) == ["succeeded", "succeeded"]
    sources = {path.name: path.read_bytes() for path in _files(ctx, "sources")}
    assert sources == {first["id"]: IMAGE, again.json()["id"]: IMAGE}


@STORED
async def test_an_asset_is_a_source(client: httpx.AsyncClient, ctx: ProcessContext) -> None:
    headers = await sign_up(client, "from-asset@example.com")
    png = image_bytes("PNG", (64, 48))
    asset = await client.post("/v1/assets", headers=headers, files={"file": ("a.png", png)})
    assert asset.status_code == 201, asset.text
    response = await submit_json(client, headers, {"source": {"asset": asset.json()["id"]}})
    assert response.status_code == 202, response.text
    assert await drain_queue(ctx) == ["succeeded"]


@STORED
async def test_another_user_s_task_or_asset_is_not_found(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    owner = await sign_up(client, "owner@example.com")
    task = (await submit(client, owner, GRAYSCALE, IMAGE)).json()["id"]
    asset = await client.post("/v1/assets", headers=owner, files={"file": ("a.jpg", IMAGE)})
    stranger = await sign_up(client, "stranger@example.com")
    for source, slug in (
        ({"task": task}, "task-not-found"),
        ({"asset": asset.json()["id"]}, "asset-not-found"),
    ):
        response = await submit_json(client, stranger, {"source": source})
        assert response.status_code == 404
        assert response.json()["type"].endswith(f"/{slug}")
    assert await balance_of(client, stranger) == 100


@STORED
async def test_a_source_removed_by_retention_is_gone(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "late@example.com")
    task = (await submit(client, headers, GRAYSCALE, IMAGE)).json()["id"]
    assert await drain_queue(ctx) == ["succeeded"]
    async with ctx.sessions.begin() as session:
        stored = await TaskRepository.from_session(session).get(uuid.UUID(task))
        assert stored is not None
        await ctx.storage.delete(stored.source_key)
        await TaskRepository.from_session(session).mark_files_purged(stored.id, utcnow())
    response = await submit_json(client, headers, {"source": {"task": task}})
    assert response.status_code == 410
    assert response.json()["type"].endswith("/source-expired")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"source": {"task": "x", "asset": "y"}}, "source", id="two-kinds"),
        pytest.param({"source": {}}, "source", id="no-kind"),
        pytest.param({"source": "https://x.example/a.jpg"}, "source", id="not-an-object"),
        pytest.param({"source": {"task": "not-a-uuid"}}, "source.task", id="bad-id"),
        pytest.param({"source": {"url": "https://x.example/", "x": 1}}, "source.x", id="extra"),
        pytest.param({"pipeline": {}}, "source", id="no-source"),
        pytest.param(
            {"source": {"url": "https://x.example/"}, "pipeline": "grayscale"},
            "pipeline",
            id="pipeline-not-an-object",
        ),
    ],
)
async def test_a_malformed_json_submission_is_a_422_naming_the_field(
    client: httpx.AsyncClient, ctx: ProcessContext, body: dict[str, Any], field: str
) -> None:
    headers = await sign_up(client, "malformed@example.com")
    response = await submit_json(client, headers, body)
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_a_body_that_is_neither_a_form_nor_json_is_a_422(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "plain@example.com")
    response = await client.post(
        "/v1/tasks", headers={**headers, "Content-Type": "text/plain"}, content=b"photo"
    )
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["Content-Type"]
    broken = await client.post(
        "/v1/tasks", headers={**headers, "Content-Type": "application/json"}, content=b"{nope"
    )
    assert broken.status_code == 422


def _fetches() -> dict[str, float]:
    return {
        outcome: REGISTRY.get_sample_value("pixelfleet_source_fetches_total", {"outcome": outcome})
        or 0.0
        for outcome in ("fetched", "refused", "unreachable")
    }


async def test_each_fetch_is_counted_by_outcome_with_its_bytes(
    client: httpx.AsyncClient, fetching: ProcessContext, host: ImageHost
) -> None:
    headers = await sign_up(client, "counted@example.com")
    before, bytes_before = _fetches(), REGISTRY.get_sample_value(
        "pixelfleet_source_fetch_bytes_total"
    )
    good = host.serve("/photo.jpg", Answer(body=IMAGE))
    assert (await submit_json(client, headers, {"source": {"url": good}})).status_code == 202
    gone = host.serve("/gone", Answer(404))
    assert (await submit_json(client, headers, {"source": {"url": gone}})).status_code == 422
    after = _fetches()
    assert {k: after[k] - before[k] for k in after} == {
        "fetched": 1,
        "refused": 0,
        "unreachable": 1,
    }
    grown = REGISTRY.get_sample_value("pixelfleet_source_fetch_bytes_total") - (bytes_before or 0)
    assert grown == len(IMAGE)
