"""Every request has an id: the client's `X-Request-ID` when it is safe, else a new one. It comes
back on every response, and the request's log lines carry it (with the caller and the task),
down to the lines of the Celery worker that runs the task the request submitted.

The module runs in celery mode (the fixtures of tests/celery_mode): the API in-process or behind
a real uvicorn, real `pixelfleet worker` processes where a test starts them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from pixelfleet.api.app import create_app
from pixelfleet.context import ProcessContext
from pixelfleet.launchers import DispatchFailed
from pixelfleet.models import Task
from pixelfleet.observability import log_context
from pixelfleet.observability.logging import JsonFormatter
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import image_bytes, sign_up, submit, truncated_jpeg
from tests.celery_mode import conftest as celery_mode
from tests.celery_mode.conftest import Processes, wait_for_status
from tests.harness.served import served
from tests.webhooks.receiver import Receiver

# Celery mode's fixtures, taken by name: every test here runs against its Redis and PostgreSQL.
backend = celery_mode.backend
redis_server = celery_mode.redis_server
settings = celery_mode.settings
processes = celery_mode.processes

THUMBNAIL = {"operations": [{"op": "thumbnail", "width": 64, "height": 64}]}
HOSTILE_REQUEST_IDS = [
    "has spaces in it",
    "x" * 500,
    "line\nInjected-Header: yes",
    'quote"and{json}',
    "",
]


@pytest.fixture
def celery_overrides() -> dict[str, Any]:
    return {"webhook_allow_private_targets": True}  # the receiver listens on loopback


class JsonLines(logging.Handler):
    """Formats each record as the deployed processes do, when it is logged (the context
    variables are read then)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def about(self, text: str) -> list[dict[str, Any]]:
        return [record for record in self.records if text in record["event"]]


@contextmanager
def json_lines_logged() -> Iterator[JsonLines]:
    """The JSON lines of every record logged at INFO or above in the block."""
    handler = JsonLines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def json_log() -> Iterator[JsonLines]:
    with json_lines_logged() as lines:
        yield lines


def json_lines_of(output: str) -> list[dict[str, Any]]:
    """The JSON log lines in a process's output (Celery's banner is plain text)."""
    lines = []
    for line in output.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


async def user_id_of(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    me = await client.get("/v1/me", headers=headers)
    assert me.status_code == 200, me.text
    return str(me.json()["id"])


class RefusingLauncher:
    """A broker that is away: the task is accepted and a warning logged."""

    async def dispatch(self, task: Task) -> None:
        raise DispatchFailed("the broker is away")

    async def close(self) -> None:
        return None


async def test_the_clients_request_id_comes_back_and_is_on_the_requests_log_lines(
    client: httpx.AsyncClient,
    ctx: ProcessContext,
    json_log: JsonLines,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers = await sign_up(client, "traced@example.com")
    user_id = await user_id_of(client, headers)
    monkeypatch.setattr(ctx, "launcher", RefusingLauncher())

    accepted = await submit(
        client, headers, THUMBNAIL, extra_headers={"X-Request-ID": "client-chosen.id:42"}
    )

    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["X-Request-ID"] == "client-chosen.id:42"
    [warning] = json_log.about("accepted but not dispatched")
    assert warning["request_id"] == "client-chosen.id:42"
    assert warning["user_id"] == user_id
    assert warning["task_id"] == accepted.json()["id"]
    # The request's fields end with it: nothing is left bound in the caller's context.
    assert log_context.current() == {}


async def test_without_a_request_id_each_request_gets_a_new_one(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")

    ids = {first.headers["X-Request-ID"], second.headers["X-Request-ID"]}
    assert len(ids) == 2
    assert all(log_context.acceptable_request_id(request_id) for request_id in ids)


@pytest.mark.parametrize("hostile", HOSTILE_REQUEST_IDS)
async def test_a_hostile_request_id_is_replaced_by_a_new_one(
    client: httpx.AsyncClient,
    ctx: ProcessContext,
    json_log: JsonLines,
    monkeypatch: pytest.MonkeyPatch,
    hostile: str,
) -> None:
    headers = await sign_up(client, "hostile@example.com")
    monkeypatch.setattr(ctx, "launcher", RefusingLauncher())

    accepted = await submit(client, headers, THUMBNAIL, extra_headers={"X-Request-ID": hostile})

    request_id = accepted.headers["X-Request-ID"]
    assert request_id != hostile
    assert log_context.acceptable_request_id(request_id) == request_id
    [warning] = json_log.about("accepted but not dispatched")
    assert warning["request_id"] == request_id
    assert all(record.get("request_id") != hostile for record in json_log.records)


async def test_errors_carry_a_request_id_too(client: httpx.AsyncClient) -> None:
    not_found = await client.get("/no/such/page", headers={"X-Request-ID": "trace-404"})
    invalid = await client.post(
        "/v1/auth/register", json={"email": "nope"}, headers={"X-Request-ID": "trace-422"}
    )
    anonymous = await client.get("/v1/me", headers={"X-Request-ID": "trace-401"})
    refused_token = await client.get("/v1/me", headers={"Authorization": "Bearer forged"})
    wrong_method = await client.delete("/v1/operations")
    too_large = await client.post(
        "/v1/auth/register", content=b"x" * (2 * 1024 * 1024), headers={"X-Request-ID": "big"}
    )

    assert (not_found.status_code, not_found.headers["X-Request-ID"]) == (404, "trace-404")
    assert (invalid.status_code, invalid.headers["X-Request-ID"]) == (422, "trace-422")
    assert (anonymous.status_code, anonymous.headers["X-Request-ID"]) == (401, "trace-401")
    assert refused_token.status_code == 401
    assert refused_token.headers["X-Request-ID"]
    assert wrong_method.status_code == 405
    assert wrong_method.headers["X-Request-ID"]
    assert (too_large.status_code, too_large.headers["X-Request-ID"]) == (413, "big")


def answering_errors(ctx: ProcessContext) -> httpx.AsyncClient:
    """A client of the app in this process that gets its 500s as answers, as a caller would."""
    transport = httpx.ASGITransport(app=create_app(ctx=ctx), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://pixelfleet.test")


async def test_an_unexpected_error_answers_and_logs_with_the_request_id(
    ctx: ProcessContext, json_log: JsonLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 500 comes from Starlette's outermost error middleware: the id must reach it."""

    def broken() -> None:
        raise RuntimeError("a bug")

    async with answering_errors(ctx) as http:
        headers = await sign_up(http, "broken@example.com")
        monkeypatch.setattr(ctx.storage, "stage", broken)  # where an upload is written
        failed = await submit(http, headers, THUMBNAIL, extra_headers={"X-Request-ID": "oops-1"})

    assert failed.status_code == 500
    assert failed.headers["X-Request-ID"] == "oops-1"
    [logged] = json_log.about("unhandled error")
    assert logged["request_id"] == "oops-1"
    assert "a bug" in logged["exception"]


async def test_a_dispatch_that_breaks_after_the_commit_leaves_the_task_accepted_and_logged(
    ctx: ProcessContext, json_log: JsonLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task is stored before its dispatch is tried: an unexpected failure there is the
    re-dispatch job's to repair, not the caller's, and its log line names the request."""

    async def broken(task: Task) -> None:
        raise RuntimeError("a bug")

    async with answering_errors(ctx) as http:
        headers = await sign_up(http, "broken-later@example.com")
        monkeypatch.setattr(ctx.launcher, "dispatch", broken)
        accepted = await submit(http, headers, THUMBNAIL, extra_headers={"X-Request-ID": "oops-2"})
        read = await http.get(f"/v1/tasks/{accepted.json()['id']}", headers=headers)

    assert accepted.status_code == 202
    assert read.json()["status"] == "queued"
    [logged] = json_log.about("work after a commit failed")
    assert logged["request_id"] == "oops-2"
    assert "a bug" in logged["exception"]


async def test_uvicorns_access_lines_carry_the_request_the_caller_and_the_task(
    ctx: ProcessContext, json_log: JsonLines
) -> None:
    async with served(create_app(ctx=ctx)) as url, httpx.AsyncClient(base_url=url) as http:
        headers = await sign_up(http, "access@example.com")
        user_id = await user_id_of(http, headers)
        accepted = await submit(http, headers, THUMBNAIL, extra_headers={"X-Request-ID": "sub-1"})
        task_id = accepted.json()["id"]
        read = await http.get(f"/v1/tasks/{task_id}", headers={**headers, "X-Request-ID": "read-1"})
        anonymous = await http.get("/v1/me", headers={"X-Request-ID": "anon-1"})

    assert (accepted.status_code, read.status_code, anonymous.status_code) == (202, 200, 401)
    access = {
        record["request_id"]: record
        for record in json_log.records
        if record["logger"] == "uvicorn.access" and "request_id" in record
    }
    assert access["sub-1"]["user_id"] == user_id
    assert access["sub-1"]["task_id"] == task_id
    assert access["read-1"]["user_id"] == user_id
    assert access["read-1"]["task_id"] == task_id
    assert "user_id" not in access["anon-1"]
    assert "task_id" not in access["anon-1"]


async def test_an_event_stream_carries_the_request_id(
    ctx: ProcessContext, json_log: JsonLines
) -> None:
    async with served(create_app(ctx=ctx)) as url, httpx.AsyncClient(base_url=url) as http:
        headers = await sign_up(http, "stream@example.com")
        task_id = (await submit(http, headers, THUMBNAIL)).json()["id"]
        async with http.stream(
            "GET", f"/v1/tasks/{task_id}/events", headers={**headers, "X-Request-ID": "sse-7"}
        ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["X-Request-ID"] == "sse-7"
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    break

    [access] = [record for record in json_log.records if record.get("request_id") == "sse-7"]
    assert access["logger"] == "uvicorn.access"
    assert access["task_id"] == task_id


async def test_the_openapi_document_lists_the_response_header(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    responses = schema["paths"]["/v1/tasks"]["post"]["responses"]
    assert "X-Request-ID" in responses["202"]["headers"]
    assert "X-Request-ID" in responses["422"]["headers"]


async def test_an_embedded_workers_lines_carry_the_task_it_runs(
    client: httpx.AsyncClient, ctx: ProcessContext, json_log: JsonLines
) -> None:
    headers = await sign_up(client, "embedded@example.com")
    accepted = await submit(client, headers, THUMBNAIL, truncated_jpeg())
    task_id = accepted.json()["id"]

    assert await drain_queue(ctx) == ["failed"]

    about_the_task = [record for record in json_log.records if task_id in record["event"]]
    assert about_the_task
    assert all(record.get("task_id") == task_id for record in about_the_task)
    assert log_context.current() == {}


@pytest.mark.celery
async def test_the_worker_that_runs_a_task_logs_under_the_request_that_submitted_it(
    client: httpx.AsyncClient, processes: Processes
) -> None:
    worker = processes.worker()
    receiver = Receiver()
    receiver.start()
    try:
        headers = await sign_up(client, "traced-worker@example.com")
        user_id = await user_id_of(client, headers)
        accepted = await client.post(
            "/v1/tasks",
            headers={**headers, "X-Request-ID": "trace-abc123"},
            files={"file": ("photo.jpg", image_bytes(), "image/jpeg")},
            data={"pipeline": json.dumps(THUMBNAIL), "callback_url": f"{receiver.url}/hook"},
        )
        assert accepted.status_code == 202, accepted.text
        task_id = accepted.json()["id"]
        await wait_for_status(client, headers, task_id, {"succeeded"})
        worker.wait_for_log("delivered", timeout=30)
    finally:
        receiver.stop()

    traced = [
        line for line in json_lines_of(worker.output) if line.get("request_id") == "trace-abc123"
    ]
    finished = [line for line in traced if "finished as succeeded" in line["event"]]
    assert finished, worker.output[-4000:]
    assert finished[0]["task_id"] == task_id
    assert finished[0]["user_id"] == user_id
    # The webhook went out from another Celery task, sent by the worker: the id went along.
    webhook_lines = [line for line in traced if line["logger"].startswith("pixelfleet.webhooks")]
    assert webhook_lines, worker.output[-4000:]
    assert all(line["task_id"] == task_id for line in webhook_lines)
