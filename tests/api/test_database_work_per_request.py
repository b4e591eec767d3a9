"""What a request asks of the database: the statements it sends and the connections it takes,
read from the engine itself (counts, never timings). A status poll is the API's most frequent
request: one statement reads the task with its outputs and checks, in passing, that the caller's
account still honours their access token. A submission without an Idempotency-Key has no earlier
request to be answered as, so it opens no savepoint."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import event

from pixelfleet.context import ProcessContext
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import image_bytes, sign_up, submit

QUICK = {"operations": [{"op": "resize", "width": 16}], "output": {"format": "png"}}
TWO_OUTPUTS = {
    "variants": [
        {
            "name": "small",
            "operations": [{"op": "resize", "width": 8}],
            "output": {"format": "png"},
        },
        {"name": "large", "operations": [{"op": "resize", "width": 24}]},
    ]
}
IMAGE = image_bytes("PNG", (48, 32))


@dataclass
class DatabaseLog:
    statements: list[str] = field(default_factory=list)
    checkouts: int = 0

    @property
    def queries(self) -> list[str]:
        """The statements that read or write rows (not BEGIN, SAVEPOINT and the like)."""
        control = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
        return [s for s in self.statements if not s.lstrip().upper().startswith(control)]


@contextmanager
def database_log(ctx: ProcessContext) -> Iterator[DatabaseLog]:
    log = DatabaseLog()
    engine = ctx.engine.sync_engine

    def statement(_conn: Any, _cursor: Any, text: str, *_rest: Any) -> None:
        log.statements.append(text)

    def checkout(*_args: Any) -> None:
        log.checkouts += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine.pool, "checkout", checkout)
    try:
        yield log
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine.pool, "checkout", checkout)


async def _api_key(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, str]:
    created = await client.post(
        "/v1/me/api-keys", headers=headers, json={"name": "poller", "scopes": ["tasks:read"]}
    )
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['key']}"}


async def test_a_status_read_takes_one_connection_and_one_query(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "poller@example.com")
    submitted = await submit(client, headers, TWO_OUTPUTS, IMAGE)
    assert submitted.status_code == 202, submitted.text
    task = submitted.json()
    assert await drain_queue(ctx) == ["succeeded"]

    with database_log(ctx) as log:
        read = await client.get(f"/v1/tasks/{task['id']}", headers=headers)
    assert read.status_code == 200, read.text
    assert [output["name"] for output in read.json()["outputs"]] == ["small", "large"]
    assert log.checkouts == 1
    # The task with its outputs, found only while the account honours the token.
    assert len(log.queries) == 1, log.queries

    with database_log(ctx) as log:
        missing = await client.get(f"/v1/tasks/{uuid.uuid4()}", headers=headers)
    assert missing.status_code == 404
    # Nothing found: then the account is read, to tell a refused token from a missing task.
    assert (log.checkouts, len(log.queries)) == (1, 2), log.queries


async def test_an_api_key_in_steady_use_writes_nothing_on_a_read(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "script@example.com")
    key = await _api_key(client, headers)
    task = (await submit(client, headers, QUICK, IMAGE)).json()
    first = await client.get(f"/v1/tasks/{task['id']}", headers=key)  # its first use is stamped
    assert first.status_code == 200

    with database_log(ctx) as log:
        for _ in range(3):
            assert (await client.get(f"/v1/tasks/{task['id']}", headers=key)).status_code == 200
    assert not [s for s in log.statements if s.lstrip().upper().startswith(("UPDATE", "INSERT"))]
    assert log.checkouts == 3
    keys = (await client.get("/v1/me/api-keys", headers=headers)).json()["items"]
    assert keys[0]["last_used_at"] is not None


async def test_a_page_of_tasks_is_one_query_and_keeps_each_tasks_outputs(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "lister@example.com")
    plain = (await submit(client, headers, QUICK, IMAGE)).json()["id"]
    varied = (await submit(client, headers, TWO_OUTPUTS, IMAGE)).json()["id"]
    assert await drain_queue(ctx) == ["succeeded", "succeeded"]
    queued = (await submit(client, headers, QUICK, IMAGE)).json()["id"]

    with database_log(ctx) as log:
        page = await client.get("/v1/tasks", headers=headers)
    assert page.status_code == 200, page.text
    outputs = {item["id"]: [o["name"] for o in item["outputs"]] for item in page.json()["items"]}
    assert [item["id"] for item in page.json()["items"]] == [queued, varied, plain]
    assert outputs == {queued: [], varied: ["small", "large"], plain: ["default"]}
    assert len(log.queries) <= 2, log.queries  # the caller, then the page with its outputs

    # Pages of one break no task's outputs apart.
    seen: list[tuple[str, list[str]]] = []
    params: dict[str, str | int] = {"limit": 1}
    while True:
        body = (await client.get("/v1/tasks", headers=headers, params=params)).json()
        seen += [(item["id"], [o["name"] for o in item["outputs"]]) for item in body["items"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert seen == [(queued, []), (varied, ["small", "large"]), (plain, ["default"])]


async def test_a_submission_opens_a_savepoint_only_with_an_idempotency_key(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "submitter@example.com")

    with database_log(ctx) as log:
        plain = await submit(client, headers, QUICK, IMAGE)
    assert plain.status_code == 202, plain.text
    assert not [s for s in log.statements if "SAVEPOINT" in s.upper()]
    assert log.checkouts == 2  # the caller's read, then the submission's transaction

    with database_log(ctx) as log:
        keyed = await submit(
            client, headers, QUICK, IMAGE, extra_headers={"Idempotency-Key": "upload-1"}
        )
    assert keyed.status_code == 202, keyed.text
    assert [s for s in log.statements if s.lstrip().upper().startswith("SAVEPOINT")]


async def test_a_task_ends_without_reading_itself_back(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    """A task's end is one conditional UPDATE that hands back the task as it left it
    (RETURNING), which everything its settlement does then uses: no read of the task after."""
    headers = await sign_up(client, "returning@example.com")
    assert (await submit(client, headers, QUICK, IMAGE)).status_code == 202
    with database_log(ctx) as log:
        assert await drain_queue(ctx) == ["succeeded"]
    [end] = [i for i, s in enumerate(log.queries) if "finished_at=?" in s.split("WHERE")[0]]
    assert log.queries[end].startswith("UPDATE tasks")
    assert "RETURNING" in log.queries[end]
    # Its outputs are the ones it writes: neither they nor the task are read back.
    after = [s for s in log.queries[end + 1 :] if s.lstrip().upper().startswith("SELECT")]
    assert not [s for s in after if " tasks" in s or " task_outputs" in s], "\n".join(after)
