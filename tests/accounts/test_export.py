"""`GET /v1/me/export`: a logged-in user downloads one JSON document of everything their
account holds (profile, ledger, payments, tasks with their pipelines, outputs and webhook
deliveries, presets, and the metadata of assets, uploads and API keys), as a file; it holds
exactly their rows, none of another user's, and no secret (no password hash, no key or its
hash, no token, no webhook secret). It is read with as many statements whatever the account
holds. Only an interactive login may ask for it."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from pixelfleet.context import ProcessContext
from pixelfleet.models import ApiKey, RefreshToken, Task, User
from tests.accounts.holdings import Holdings, an_account_holding_everything
from tests.api_helpers import sign_up, submit, whole_ledger

pytestmark = pytest.mark.both_backends


async def _export(client: httpx.AsyncClient, holder: Holdings) -> httpx.Response:
    return await client.get("/v1/me/export", headers=holder.headers)


async def _task_ids_of(ctx: ProcessContext, user_id: uuid.UUID) -> set[str]:
    async with ctx.sessions() as session:
        ids = await session.scalars(select(Task.id).where(Task.user_id == user_id))
        return {str(task_id) for task_id in ids}


async def test_the_export_holds_everything_the_account_holds(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    alice = await an_account_holding_everything(client, ctx, "alice@example.com")

    answer = await _export(client, alice)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert re.fullmatch(
        r'attachment; filename="pixelfleet-export-\d{4}-\d{2}-\d{2}\.json"',
        answer.headers["content-disposition"],
    )
    document: dict[str, Any] = answer.json()
    assert document["format_version"] == 1
    assert document["exported_at"]
    profile = document["profile"]
    assert (profile["id"], profile["email"]) == (str(alice.user_id), "alice@example.com")
    assert profile["balance"] == sum(line["amount"] for line in document["ledger"])

    ledger = await whole_ledger(client, alice.headers)
    assert [line["id"] for line in document["ledger"]] == sorted(line["id"] for line in ledger)
    assert [p["id"] for p in document["payments"]] == [str(alice.payment_id)]
    tasks = {task["id"]: task for task in document["tasks"]}
    assert set(tasks) == await _task_ids_of(ctx, alice.user_id)
    assert set(alice.task_ids) <= set(tasks)  # and the task making a derivative
    first = tasks[alice.task_ids[0]]
    assert [op["op"] for op in first["pipeline"]["operations"]] == ["grayscale"]
    assert [d["id"] for d in first["webhook_deliveries"]] == [str(alice.delivery_id)]
    assert first["webhook_deliveries"][0]["url"] == "https://hooks.example.com/pixelfleet"
    assert [preset["name"] for preset in document["presets"]] == [alice.preset]
    assert [op["op"] for op in document["presets"][0]["pipeline"]["operations"]] == ["flip"]
    assert [asset["id"] for asset in document["assets"]] == [alice.asset_id]
    assert [upload["id"] for upload in document["uploads"]] == [alice.upload_id]
    [key] = document["api_keys"]
    assert (key["id"], key["name"], key["scopes"]) == (alice.api_key_id, "build", ["tasks:read"])
    assert alice.api_key.startswith(key["prefix"])


async def test_the_export_holds_none_of_another_users_rows(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    alice = await an_account_holding_everything(client, ctx, "alice@example.com")
    bob = await an_account_holding_everything(client, ctx, "bob@example.com")

    text = (await _export(client, alice)).text
    for theirs in (
        "bob@example.com",
        str(bob.user_id),
        *await _task_ids_of(ctx, bob.user_id),
        bob.asset_id,
        bob.upload_id,
        bob.api_key_id,
        str(bob.payment_id),
        str(bob.delivery_id),
    ):
        assert theirs not in text, theirs
    assert (await _export(client, bob)).json()["profile"]["email"] == "bob@example.com"


async def test_the_export_holds_no_secret(client: httpx.AsyncClient, ctx: ProcessContext) -> None:
    alice = await an_account_holding_everything(client, ctx, "alice@example.com")
    rotated = await client.post("/v1/me/webhook-secret/rotate", headers=alice.headers)
    assert rotated.status_code == 200, rotated.text
    async with ctx.sessions() as session:
        user = await session.get(User, alice.user_id)
        assert user is not None
        stored = [
            user.password_hash,
            *(await session.scalars(select(ApiKey.key_hash).where(ApiKey.user_id == user.id))),
            *(
                await session.scalars(
                    select(RefreshToken.token_hash).where(RefreshToken.user_id == user.id)
                )
            ),
        ]

    document = (await _export(client, alice)).json()
    text = json.dumps(document)
    secrets = [
        *stored,
        alice.api_key,
        alice.refresh_token,
        alice.headers["Authorization"].removeprefix("Bearer "),
        *(value for value in rotated.json().values() if isinstance(value, str)),
    ]
    for secret in secrets:
        assert secret not in text
    assert document["profile"]["webhook_secret_rotated"] is True
    assert "/v1/results/" not in text  # no signed URL either


async def test_an_api_key_cannot_export_the_account(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    alice = await an_account_holding_everything(client, ctx, "alice@example.com")
    refused = await client.get(
        "/v1/me/export", headers={"Authorization": f"Bearer {alice.api_key}"}
    )
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/insufficient-scope")


async def test_the_export_takes_as_many_statements_however_much_the_account_holds(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "carol@example.com")
    flip = {"operations": [{"op": "flip"}]}
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    async def statements_of_an_export() -> int:
        statements.clear()
        event.listen(ctx.engine.sync_engine, "before_cursor_execute", count)
        try:
            assert (await client.get("/v1/me/export", headers=headers)).status_code == 200
        finally:
            event.remove(ctx.engine.sync_engine, "before_cursor_execute", count)
        return len(statements)

    assert (await submit(client, headers, flip)).status_code == 202
    few = await statements_of_an_export()
    for _ in range(4):
        assert (await submit(client, headers, flip)).status_code == 202
    assert few > 0
    assert await statements_of_an_export() == few
