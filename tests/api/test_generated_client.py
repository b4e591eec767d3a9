"""A client generated from the served OpenAPI document works: the document validates as OpenAPI,
openapi-python-client generates a client from it without dropping an answer of any route a
session needs, and that client alone (no hand-written request) runs a whole session: sign up,
log in, upload an image, wait for the task, read its events, download the result and decode
it, submit another (a typed pipeline on the same image) and cancel it, and read credits whose
ledger adds up to the balance."""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from PIL import Image

from pixelfleet.api.app import create_app
from pixelfleet.context import ProcessContext
from pixelfleet.worker.embedded import run_worker
from tests.api_helpers import PASSWORD, image_bytes
from tests.harness.served import served

PACKAGE = "pixelfleet_generated_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
# What openapi-python-client cannot express: a body whose type is one of several image types
# (the direct upload's PUT, whose URL and headers `POST /v1/uploads` gives; with S3 storage
# it is not this API's at all). Every other operation must be generated whole.
NOT_GENERATED = "PUT /v1/uploads/{upload_id}/content"
# How the generator heads each problem it met (an operation, or a schema, it left out in part
# or whole); what follows a heading says why.
PROBLEM_HEADINGS = ("WARNING parsing ", "ERROR parsing ", "Unable to ")
FINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture
def backend() -> str:
    """What a generated client sends is no matter of database semantics: one backend."""
    return "sqlite"


async def _generate(document: dict[str, Any], where: Path) -> str:
    """Generates the client package into `where` and returns what the generator printed."""
    (where / "openapi.json").write_text(json.dumps(document))
    # No post-hooks: they would only format the generated code with ruff.
    (where / "config.json").write_text(json.dumps({"post_hooks": []}))
    process = await asyncio.create_subprocess_exec(
        str(GENERATOR),
        "generate",
        "--path",
        str(where / "openapi.json"),
        "--output-path",
        str(where / PACKAGE),
        "--meta",
        "none",
        "--config",
        str(where / "config.json"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    printed, _ = await process.communicate()
    output = printed.decode()
    assert process.returncode == 0, output
    return output


@contextmanager
def _imported(where: Path) -> Iterator[ModuleType]:
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _problems(output: str) -> list[str]:
    """The headings of the problems the generator reports."""
    return [line for line in output.splitlines() if line.startswith(PROBLEM_HEADINGS)]


@asynccontextmanager
async def _worker(ctx: ProcessContext) -> AsyncIterator[None]:
    """An embedded worker beside the API while the block runs, as under `pixelfleet up`."""
    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(ctx, "generated-client-worker", stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)


async def test_a_generated_client_runs_a_whole_session(
    ctx: ProcessContext, tmp_path: Path
) -> None:
    async with served(create_app(ctx=ctx)) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            document = (await http.get("/openapi.json")).json()
        validate(document)
        output = await _generate(document, tmp_path)
        assert _problems(output) == [
            f"WARNING parsing {NOT_GENERATED} within uploads. Endpoint will not be generated."
        ], output
        with _imported(tmp_path) as client_package:
            await _run_session(client_package, url, ctx)


def _operation(group: str, name: str) -> Any:
    """The generated module of one operation (`sync`, `asyncio`, `asyncio_detailed`)."""
    return importlib.import_module(f"{PACKAGE}.api.{group}.{name}")


async def _run_session(package: ModuleType, url: str, ctx: ProcessContext) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")
    register, log_in = _operation("auth", "register"), _operation("auth", "log_in")
    submit_task, get_task = _operation("tasks", "submit_task"), _operation("tasks", "get_task")
    task_events = _operation("tasks", "task_events")
    download_result = _operation("tasks", "download_result")
    cancel_task = _operation("tasks", "cancel_task")
    my_credits = _operation("account", "my_credits")

    email = "generated@example.com"
    anonymous = package.Client(base_url=url, raise_on_unexpected_status=True)
    registered = await register.asyncio_detailed(
        client=anonymous, body=models.RegisterRequest(email=email, password=PASSWORD)
    )
    assert registered.status_code == 202
    tokens = await log_in.asyncio(
        client=anonymous, body=models.BodyLogIn(username=email, password=PASSWORD)
    )
    assert isinstance(tokens, models.TokenPair)
    client = package.AuthenticatedClient(
        base_url=url, token=tokens.access_token, raise_on_unexpected_status=True
    )

    def upload(pipeline: dict[str, Any]) -> Any:
        photo = types.File(
            payload=io.BytesIO(image_bytes("JPEG", (640, 480))),
            file_name="photo.jpg",
            mime_type="image/jpeg",
        )
        return models.TaskUpload(file=photo, pipeline=json.dumps(pipeline))

    resize = {"operations": [{"op": "resize", "width": 160}], "output": {"format": "png"}}
    async with _worker(ctx):
        submitted = await submit_task.asyncio_detailed(client=client, body=upload(resize))
        assert submitted.status_code == 202, submitted.content
        task = submitted.parsed
        assert isinstance(task, models.TaskOut)
        while task.status not in FINAL:  # a long-poll: answered on the task's next change
            task = await get_task.asyncio(client=client, task_id=task.id, wait=30)
            assert isinstance(task, models.TaskOut)
    assert task.status == "succeeded", task.error
    done = task
    (step,) = done.pipeline.operations  # typed: one model per operation, told apart by `op`
    assert isinstance(step, models.ResizeParams)
    assert (step.op, step.width, step.fit) == ("resize", 160, "inside")

    events = await task_events.asyncio_detailed(client=client, task_id=done.id)
    assert events.status_code == 200
    assert events.headers["content-type"].startswith("text/event-stream")
    assert isinstance(events.parsed, str)
    assert "event: done\n" in events.parsed
    final = events.parsed.split("event: done\ndata: ")[1].split("\n")[0]
    assert models.ProgressEvent.from_dict(json.loads(final)).status == "succeeded"

    downloaded = await download_result.asyncio_detailed(client=client, task_id=done.id)
    assert downloaded.status_code == 200
    assert isinstance(downloaded.parsed, types.File)
    with Image.open(downloaded.parsed.payload) as image:
        assert (image.format, image.size) == ("PNG", (160, 120))

    # No worker runs now: the second task is still queued when it is cancelled. It reuses the
    # first one's image, with a pipeline built from the generated models.
    again = models.TaskSubmission(
        source=models.TaskSource(task=done.id),
        pipeline=models.Pipeline(operations=[models.BlurParams(sigma=2.0)]),
    )
    second = await submit_task.asyncio(client=client, body=again)
    assert isinstance(second, models.TaskOut)
    assert second.status == "queued"
    cancelled = await cancel_task.asyncio(client=client, task_id=second.id)
    assert isinstance(cancelled, models.TaskOut)
    assert cancelled.status == "cancelled"

    credits = await my_credits.asyncio(client=client, limit=100)
    assert isinstance(credits, models.CreditsOut)
    entries = credits.ledger.items
    assert credits.ledger.next_cursor is None
    assert sum(entry.amount for entry in entries) == credits.balance
    assert entries[0].balance_after == credits.balance  # newest first
    by_task = {
        (entry.kind, entry.task_id): entry.amount
        for entry in entries
        if entry.task_id is not types.UNSET and entry.task_id is not None
    }
    assert by_task == {
        ("task_debit", done.id): -done.cost,
        ("task_debit", second.id): -second.cost,
        ("task_refund", second.id): second.cost,
    }
    grants = [entry.amount for entry in entries if entry.kind == "grant"]
    assert grants == [ctx.settings.signup_credits]
    assert credits.balance == ctx.settings.signup_credits - done.cost
