"""Row-level security, PostgreSQL's second wall: as the API's role on behalf of one user, a
query that forgets its owner filter finds none of another user's rows, and cannot write one.
The owner (worker, scheduler, operator, administrators) sees everything. SQLite has no such
wall: there the tests are skipped."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import ColumnElement, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet import row_security
from pixelfleet.context import ProcessContext
from pixelfleet.jobs.repository import TASK_VIEW, TaskRepository, TaskView
from pixelfleet.models import Payment, Task
from tests.admin.steps import id_of
from tests.api_helpers import sign_up, submit


@pytest.fixture
def backend() -> str:
    return "postgresql"  # the only backend with row-level security


async def _everything_of(client: httpx.AsyncClient, ctx: ProcessContext, email: str) -> uuid.UUID:
    """An account with a row in each owned table: its signup grant and a task's debit
    (credit_entries), the task and its idempotency key, a preset, an asset, an API key, a
    direct upload, a derivative (being made) and a payment."""
    headers = await sign_up(client, email)
    user_id = uuid.UUID(await id_of(client, headers))
    task = await submit(
        client,
        headers,
        {"operations": [{"op": "grayscale"}]},
        extra_headers={"Idempotency-Key": f"first-{email}"},
    )
    assert task.status_code == 202, task.text
    preset = await client.put(
        "/v1/presets/avatar", headers=headers, json={"pipeline": {"operations": [{"op": "flip"}]}}
    )
    assert preset.status_code in (200, 201), preset.text
    asset = await client.post(
        "/v1/assets", headers=headers, files={"file": ("logo.jpg", _logo(), "image/jpeg")}
    )
    assert asset.status_code == 201, asset.text
    key = await client.post(
        "/v1/me/api-keys", headers=headers, json={"name": "build", "scopes": ["tasks:read"]}
    )
    assert key.status_code == 201, key.text
    upload = await client.post(
        "/v1/uploads", headers=headers, json={"content_type": "image/png", "bytes": 100}
    )
    assert upload.status_code == 201, upload.text
    image_url = await client.post(
        "/v1/image-urls",
        headers=headers,
        json={"source": {"asset": asset.json()["id"]}, "preset": "avatar"},
    )
    assert image_url.status_code == 201, image_url.text
    ctx.settings.derive_timeout_seconds = 0.01  # no worker runs here: it stays being made
    assert (await client.get(image_url.json()["url"])).status_code == 503
    async with ctx.sessions.begin() as session:
        session.add(
            Payment(
                user_id=user_id,
                pack_id="starter",
                credits=500,
                amount=49_900,
                currency="INR",
                order_id=f"order_{uuid.uuid4().hex[:14]}",
            )
        )
    return user_id


def _logo() -> bytes:
    from tests.api_helpers import image_bytes

    return image_bytes("JPEG", (64, 32))


@pytest.fixture
async def alice_and_bob(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> tuple[uuid.UUID, uuid.UUID]:
    return (
        await _everything_of(client, ctx, "alice@example.com"),
        await _everything_of(client, ctx, "bob@example.com"),
    )


async def _owners(session: AsyncSession, table: str) -> set[uuid.UUID]:
    """Whose rows a query without any owner filter finds."""
    rows = await session.execute(text(f"SELECT user_id FROM {table}"))
    return {row.user_id for row in rows}


async def test_a_query_without_its_owner_filter_finds_only_the_callers_rows(
    ctx: ProcessContext, alice_and_bob: tuple[uuid.UUID, uuid.UUID]
) -> None:
    alice, bob = alice_and_bob
    with row_security.acting_as(alice):
        async with ctx.sessions() as session:
            assert (await session.scalar(text("SELECT current_user"))) == row_security.API_ROLE
            for table in row_security.OWNED_TABLES:
                assert await _owners(session, table) == {alice}, table

    async with ctx.sessions() as session:  # the owner: the worker's, the scheduler's view
        for table in row_security.OWNED_TABLES:
            assert await _owners(session, table) == {alice, bob}, table


async def test_the_api_role_cannot_write_another_users_row(
    ctx: ProcessContext, alice_and_bob: tuple[uuid.UUID, uuid.UUID]
) -> None:
    alice, bob = alice_and_bob
    with row_security.acting_as(alice):
        async with ctx.sessions() as session:
            with pytest.raises(DBAPIError, match="row-level security"):
                await session.execute(
                    text(
                        "INSERT INTO presets (user_id, name, pipeline, created_at, updated_at) "
                        "VALUES (:bob, 'planted', '{}', now(), now())"
                    ),
                    {"bob": bob},
                )
        async with ctx.sessions() as session:
            moved = await session.execute(
                text("UPDATE tasks SET cost = 0 WHERE user_id = :bob"), {"bob": bob}
            )
            assert moved.rowcount == 0


async def test_the_api_role_without_a_user_finds_nothing(
    ctx: ProcessContext, alice_and_bob: tuple[uuid.UUID, uuid.UUID]
) -> None:
    async with ctx.sessions() as session:
        await session.execute(text(f"SELECT set_config('role', '{row_security.API_ROLE}', true)"))
        for table in row_security.OWNED_TABLES:
            assert await _owners(session, table) == set(), table


async def test_a_route_whose_query_forgot_the_owner_is_still_walled(
    client: httpx.AsyncClient,
    ctx: ProcessContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fault injection: the repository's owner filter is dropped, as a bug would drop it.
    Bob's task is still not Alice's to read."""
    alice = await sign_up(client, "alice@example.com")
    bob = await sign_up(client, "bob@example.com")
    bobs = (await submit(client, bob, {"operations": [{"op": "flop"}]})).json()["id"]

    async def forgetful(
        self: TaskRepository, task_id: uuid.UUID, user_id: uuid.UUID
    ) -> Task | None:
        return await self.get(task_id)

    async def forgetful_view(
        self: TaskRepository,
        task_id: uuid.UUID,
        user_id: uuid.UUID,
        *,
        only_if: ColumnElement[bool] | None = None,
    ) -> TaskView | None:
        statement = select(*TASK_VIEW).where(Task.id == task_id)  # no owner
        if only_if is not None:
            statement = statement.where(only_if)  # (the account check, kept)
        row = (await self.session.execute(statement)).one_or_none()
        return None if row is None else TaskView(*row, outputs=[])

    monkeypatch.setattr(TaskRepository, "get_for_user", forgetful)
    # The status read checks its caller's account in its own statement, and runs as the
    # caller from its first statement: it still meets the wall.
    monkeypatch.setattr(TaskRepository, "task_view", forgetful_view)
    assert (await client.get(f"/v1/tasks/{bobs}", headers=bob)).status_code == 200
    leaked = await client.get(f"/v1/tasks/{bobs}", headers=alice)
    assert leaked.status_code == 404, leaked.text
    assert (await client.delete(f"/v1/tasks/{bobs}", headers=alice)).status_code == 404


# Tables with a `user_id` that the wall leaves out, and why.
UNWALLED = {
    # Read and written only before a caller is known (login, refresh, logout), as the owner.
    "refresh_tokens",
    # Mailed links and the mail outbox: read and written for nobody's session, as the owner
    # (migration 0014), as `users` is.
    "password_resets",
    "outbound_mail",
}


async def test_every_table_of_a_users_rows_has_the_policy(ctx: ProcessContext) -> None:
    async with ctx.sessions() as session:
        with_user_id = set(
            await session.scalars(
                text(
                    "SELECT table_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND column_name = 'user_id'"
                )
            )
        )
        walled = set(
            await session.scalars(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_policies p "
                    "ON p.tablename = c.relname AND p.schemaname = 'public' "
                    "WHERE c.relrowsecurity AND :role = ANY(p.roles)"
                ),
                {"role": row_security.API_ROLE},
            )
        )
    assert walled == set(row_security.OWNED_TABLES)
    assert with_user_id - walled == UNWALLED
