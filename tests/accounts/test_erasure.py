"""`DELETE /v1/me` with the account's password erases it, in one transaction: queued tasks are
cancelled and refunded first, running ones stopped; then every row of the account is deleted
(tasks with their outputs, derivatives, webhook deliveries and idempotency keys; presets,
assets, uploads, API keys, logins, reset links, mail) and its stored files right after. Its
payments and ledger lines stay, on the account row, which is kept anonymised: every balance
still equals its ledger (`pixelfleet admin audit` passes), no token or key of it works, and
its email can sign up again as a new account. A wrong password erases nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from pixelfleet.cli import main
from pixelfleet.context import ProcessContext
from pixelfleet.db import Base, unit_of_work, utcnow
from pixelfleet.jobs.maintenance import purge_expired_files
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.models import (
    Asset,
    CreditEntry,
    OrphanedFile,
    PaymentEvent,
    Task,
    TaskOutput,
    Upload,
    User,
    WebhookDelivery,
)
from tests.accounts.holdings import an_account_holding_everything
from tests.admin.steps import bearer, id_of
from tests.api_helpers import PASSWORD, balance_of, image_bytes, sign_up, submit

pytestmark = pytest.mark.both_backends

# The tables whose rows of an erased account stay (its account row stays too, anonymised).
KEPT = {"payments", "credit_entries"}


async def _erase(
    client: httpx.AsyncClient, headers: dict[str, str], password: str = PASSWORD
) -> httpx.Response:
    return await client.request("DELETE", "/v1/me", headers=headers, json={"password": password})


async def _rows_by_table(ctx: ProcessContext, user_id: uuid.UUID) -> dict[str, int]:
    """How many rows each table with a `user_id` holds of the account, and how many of its
    tasks' outputs and webhook deliveries there are."""
    counted: dict[str, int] = {}
    async with ctx.sessions() as session:
        for table in Base.metadata.sorted_tables:
            if "user_id" in table.c:
                statement = select(func.count()).where(table.c.user_id == user_id)
                counted[table.name] = int(await session.scalar(statement) or 0)
        tasks = select(Task.id).where(Task.user_id == user_id)
        for kept_by_task in (TaskOutput, WebhookDelivery):
            statement = select(func.count()).where(kept_by_task.task_id.in_(tasks))
            counted[kept_by_task.__tablename__] = int(await session.scalar(statement) or 0)
    return counted


async def _stored_keys(ctx: ProcessContext, user_id: uuid.UUID) -> set[str]:
    async with ctx.sessions() as session:
        tasks = list(await session.scalars(select(Task).where(Task.user_id == user_id)))
        assets = await session.scalars(select(Asset.key).where(Asset.user_id == user_id))
        uploads = await session.scalars(select(Upload.key).where(Upload.user_id == user_id))
        keys = {task.source_key for task in tasks} | set(assets) | set(uploads)
        for task in tasks:
            keys.update(key for output in task.outputs for key in output.stored_keys())
    return keys


def _audit(ctx: ProcessContext, tmp_path: Path) -> tuple[int, str]:
    env = {
        "PIXELFLEET_DATABASE_URL": ctx.settings.resolved_database_url,
        "PIXELFLEET_DATA_DIR": str(tmp_path / "cli"),
    }
    result = CliRunner().invoke(main, ["admin", "audit"], env=env)
    return result.exit_code, result.output


async def test_an_erasure_leaves_no_row_or_file_of_the_account_but_its_books(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    alice = await an_account_holding_everything(client, ctx, "alice@example.com")
    bob = await an_account_holding_everything(client, ctx, "bob@example.com")
    await ctx.storage.put(f"uploads/{alice.upload_id}", b"sent")  # an upload's bytes, received
    alices_files = await _stored_keys(ctx, alice.user_id)
    bobs_files = await _stored_keys(ctx, bob.user_id)
    bobs_rows = await _rows_by_table(ctx, bob.user_id)
    before = await _rows_by_table(ctx, alice.user_id)
    assert all(before[table] > 0 for table in before), before  # it held something of each

    erased = await _erase(client, alice.headers)
    assert erased.status_code == 202, erased.text
    answer = erased.json()
    assert answer["id"] == str(alice.user_id)
    assert answer["tasks_cancelled"] == 2  # the queued task and the derivative being made
    assert answer["tasks_deleted"] == 3

    after = await _rows_by_table(ctx, alice.user_id)
    assert {table: n for table, n in after.items() if n} == {
        table: before[table] for table in KEPT
    } | {"credit_entries": before["credit_entries"] + 2}  # the two refunds
    assert await _rows_by_table(ctx, bob.user_id) == bobs_rows
    for key in alices_files:
        assert not await ctx.storage.exists(key), key
    for key in bobs_files:
        if not key.startswith("uploads/"):  # bob's upload was never sent
            assert await ctx.storage.exists(key), key

    async with ctx.sessions() as session:
        account = await session.get(User, alice.user_id)
        assert account is not None
        assert account.email == f"erased-{alice.user_id}@erased.invalid"
        assert not account.is_active
        assert account.erased_at is not None
        assert account.email_verified_at is None


async def test_the_books_still_balance_and_queued_work_was_refunded_first(
    client: httpx.AsyncClient, ctx: ProcessContext, tmp_path: Path
) -> None:
    headers = await sign_up(client, "spender@example.com")
    user_id = uuid.UUID(await id_of(client, headers))
    queued = await submit(client, headers, {"operations": [{"op": "grayscale"}]})
    assert queued.status_code == 202, queued.text
    cost = queued.json()["cost"]
    assert await balance_of(client, headers) == 100 - cost

    assert (await _erase(client, headers)).status_code == 202

    async with ctx.sessions() as session:
        account = await session.get(User, user_id)
        assert account is not None
        assert account.balance == 100  # the queued task's credits came back before it went
        ledger = await session.execute(
            select(CreditEntry.kind, CreditEntry.amount, CreditEntry.task_id)
            .where(CreditEntry.user_id == user_id)
            .order_by(CreditEntry.id)
        )
        assert [tuple(line) for line in ledger] == [
            ("grant", 100, None),
            ("task_debit", -cost, None),  # their task is gone; the lines stay
            ("task_refund", cost, None),
        ]
    code, output = await asyncio.to_thread(_audit, ctx, tmp_path)
    assert code == 0, output
    assert "every balance equals the sum of its ledger" in output


async def test_a_running_task_is_stopped_and_its_worker_told(
    client: httpx.AsyncClient, ctx: ProcessContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = await sign_up(client, "runner@example.com")
    user_id = uuid.UUID(await id_of(client, headers))
    task = await submit(client, headers, {"operations": [{"op": "grayscale"}]})
    task_id = uuid.UUID(task.json()["id"])
    async with ctx.sessions.begin() as session:
        assert await TaskRepository.from_session(session).claim(task_id, "worker-1", utcnow())
    withdrawn: list[uuid.UUID] = []
    forgotten: list[uuid.UUID] = []

    async def tell_worker(task: Task) -> None:
        withdrawn.append(task.id)

    async def forget(task_ids: Sequence[uuid.UUID]) -> None:
        forgotten.extend(task_ids)

    monkeypatch.setattr(ctx.launcher, "withdrawn", tell_worker)
    monkeypatch.setattr(ctx.launcher, "erased", forget)

    erased = await _erase(client, headers)
    assert erased.status_code == 202, erased.text
    assert erased.json()["tasks_cancelled"] == 1
    assert withdrawn == [task_id]  # after the commit, as for any cancel
    assert forgotten == [task_id]
    async with ctx.sessions() as session:
        assert not await TaskRepository.from_session(session).is_held_by(task_id, "worker-1")
        lines = select(CreditEntry.kind).where(CreditEntry.user_id == user_id)
        kinds = await session.scalars(lines)
        assert sorted(kinds) == ["grant", "task_debit"]  # it ran: charged, not refunded


async def test_no_token_or_key_of_an_erased_account_works_and_its_email_signs_up_anew(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    alice = await an_account_holding_everything(client, ctx, "alice@example.com")
    assert (await _erase(client, alice.headers)).status_code == 202

    for credential in (alice.headers, bearer(alice.api_key)):
        assert (await client.get("/v1/me", headers=credential)).status_code == 401
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert refreshed.status_code == 401
    login = await client.post(
        "/v1/auth/token", data={"username": alice.email, "password": PASSWORD}
    )
    assert login.status_code == 401

    again = await sign_up(client, alice.email)
    assert await id_of(client, again) != str(alice.user_id)
    assert await balance_of(client, again) == 100
    assert (await client.get("/v1/tasks", headers=again)).json()["items"] == []


async def test_a_wrong_password_erases_nothing(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    alice = await an_account_holding_everything(client, ctx, "alice@example.com")
    before = await _rows_by_table(ctx, alice.user_id)

    refused = await _erase(client, alice.headers, "not the password")
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/wrong-password")
    assert [error["field"] for error in refused.json()["errors"]] == ["password"]
    assert await _rows_by_table(ctx, alice.user_id) == before
    assert (await client.get("/v1/me", headers=alice.headers)).status_code == 200


async def test_an_api_key_cannot_erase_the_account(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    alice = await an_account_holding_everything(client, ctx, "alice@example.com")
    refused = await _erase(client, bearer(alice.api_key))
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/insufficient-scope")
    assert (await client.get("/v1/me", headers=alice.headers)).status_code == 200


async def test_a_submission_whose_upload_was_still_coming_when_the_account_went_is_refused(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    """The account is read when a request starts, and erased while its image streams in: the
    task is refused once the account is held (403 `account-disabled`), nothing is charged to
    the erased account, and its stored source goes."""
    headers = await sign_up(client, "leaving-mid-upload@example.com")
    user_id = uuid.UUID(await id_of(client, headers))
    boundary = "pixelfleet-test-boundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
        "Content-Type: image/png\r\n\r\n"
    ).encode() + image_bytes("PNG", (64, 48)) + f"\r\n--{boundary}--\r\n".encode()
    halfway = asyncio.Event()
    erased = asyncio.Event()

    async def streamed() -> AsyncIterator[bytes]:
        yield body[: len(body) // 2]
        halfway.set()
        await erased.wait()
        yield body[len(body) // 2 :]

    submitting = asyncio.create_task(
        client.post(
            "/v1/tasks",
            headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            content=streamed(),
        )
    )
    await halfway.wait()
    assert (await _erase(client, headers)).status_code == 202
    erased.set()
    refused = await submitting

    assert refused.status_code == 403, refused.text
    assert refused.json()["type"].endswith("/account-disabled")
    assert (await _rows_by_table(ctx, user_id))["tasks"] == 0
    sources = ctx.settings.data_dir / "files" / "sources"
    assert not sources.exists() or list(sources.iterdir()) == []


async def test_the_payment_providers_events_are_kept_without_the_payer(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    held = await an_account_holding_everything(client, ctx, "paid-and-left@example.com")
    assert (await _erase(client, held.headers)).status_code == 202

    async with ctx.sessions() as session:
        [event] = list(await session.scalars(select(PaymentEvent)))
    entity = event.payload["payload"]["payment"]["entity"]
    assert (entity["amount"], entity["status"]) == (49_900, "captured")  # the books' part
    assert (entity["email"], entity["contact"], entity["vpa"]) == (None, None, None)
    assert "paid-and-left@example.com" not in json.dumps(event.payload)


async def test_files_noted_as_orphaned_are_deleted_by_the_upkeep(ctx: ProcessContext) -> None:
    """Erased files are noted in the erasure's transaction: whatever the storage did not let
    go after the commit (it was away, the process stopped), the upkeep deletes later."""
    for key in ("sources/left-behind", "results/left-behind.webp"):
        await ctx.storage.put(key, b"bytes of an erased account")
    async with unit_of_work(ctx) as session:
        session.add_all(
            [OrphanedFile(key="sources/left-behind"), OrphanedFile(key="results/left-behind.webp")]
        )

    assert await purge_expired_files(ctx) == 2
    for key in ("sources/left-behind", "results/left-behind.webp"):
        assert not await ctx.storage.exists(key)
    async with ctx.read_sessions() as session:
        assert list(await session.scalars(select(OrphanedFile))) == []
