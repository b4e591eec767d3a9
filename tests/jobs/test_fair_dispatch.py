"""Fair sharing between accounts at dispatch: with `dispatch_ahead` tasks of a queue handed to
the workers, the rest wait their turn; once starts have opened half the room, it is filled,
slot by slot to the account with the fewest in flight, its own tasks by priority. A task of an
account with nothing in flight so waits behind at most `dispatch_ahead` others, however many
another account queued."""

from __future__ import annotations

import uuid

import httpx
import pytest

from pixelfleet.context import ProcessContext
from pixelfleet.db import unit_of_work
from pixelfleet.jobs import maintenance
from pixelfleet.jobs import service as jobs
from pixelfleet.jobs.placement import Placement
from pixelfleet.jobs.processing import process_oldest_queued
from pixelfleet.settings import Settings
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import image_bytes, sign_up, submit
from tests.jobs.test_task_bounds import placed_task
from tests.records import new_user, stored_task

# Database semantics (see tests/conftest.py): on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_backends

AHEAD = 4
QUICK = {"operations": [{"op": "resize", "width": 16}], "output": {"format": "png"}}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"dispatch_ahead": AHEAD})


async def queue_tasks(client: httpx.AsyncClient, email: str, count: int) -> list[str]:
    headers = await sign_up(client, email)
    image = image_bytes("PNG", (32, 24))
    return [(await submit(client, headers, QUICK, image)).json()["id"] for _ in range(count)]


async def handed_out(ctx: ProcessContext, ids: list[str]) -> list[str]:
    return [i for i in ids if (await stored_task(ctx, i)).dispatched_at is not None]


async def test_a_task_is_handed_out_at_once_while_its_queue_has_room(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    ids = await queue_tasks(client, "room@example.com", AHEAD)

    assert await handed_out(ctx, ids) == ids


async def test_past_the_room_ahead_tasks_wait_their_turn_and_all_still_run(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    ids = await queue_tasks(client, "batch@example.com", 3 * AHEAD)

    assert await handed_out(ctx, ids) == ids[:AHEAD]
    assert await drain_queue(ctx) == ["succeeded"] * (3 * AHEAD)


async def test_a_small_accounts_task_goes_before_a_big_batch_it_came_after(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    batch = await queue_tasks(client, "big@example.com", 5 * AHEAD)
    [small] = await queue_tasks(client, "small@example.com", 1)
    assert small not in await handed_out(ctx, [small])  # the room is the batch's

    runs = 0
    while (await stored_task(ctx, small)).status != "succeeded":
        assert await process_oldest_queued(ctx, "worker") == "succeeded"
        runs += 1

    # Behind at most the tasks handed out before it, not behind the batch.
    assert runs <= AHEAD + 1
    assert len(await handed_out(ctx, batch)) < len(batch)  # the batch still waits its turn


async def test_an_accounts_own_tasks_wait_their_turn_by_priority(ctx: ProcessContext) -> None:
    user_id = await new_user(ctx)
    first = [await placed_task(ctx, user_id, Placement()) for _ in range(AHEAD)]
    low, high, middle = [
        str(await placed_task(ctx, user_id, Placement(priority=p))) for p in (1, 8, 5)
    ]
    assert await handed_out(ctx, [str(t) for t in first]) == [str(t) for t in first]

    # Half the room opens (two starts): it is filled, highest priority first.
    for _ in range(AHEAD // 2):
        assert await process_oldest_queued(ctx, "worker") == "succeeded"

    assert await handed_out(ctx, [low, high, middle]) == [high, middle]


async def test_the_upkeep_hands_out_what_a_lost_start_left_waiting(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    ids = await queue_tasks(client, "lost-start@example.com", 2 * AHEAD)
    # Room opens without a start (the handed-out tasks are cancelled), and no release follows.
    async with unit_of_work(ctx) as session:
        for task_id in ids[:AHEAD]:
            await jobs.cancel_task_by_id(session, uuid.UUID(task_id), ctx.retention)

    await maintenance.redispatch_stale_tasks(ctx)

    assert await handed_out(ctx, ids[AHEAD:]) == ids[AHEAD:]


async def test_a_release_after_a_submission_weighs_every_accounts_waiting_tasks(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    # Under PostgreSQL's row security a request sees only its caller's rows; the release it
    # triggers must still see everyone's.
    waiting = await queue_tasks(client, "waiting@example.com", 3 * AHEAD)
    async with unit_of_work(ctx) as session:  # room opens with no start to fill it
        for task_id in waiting[:AHEAD]:
            await jobs.cancel_task_by_id(session, uuid.UUID(task_id), ctx.retention)

    [newcomer] = await queue_tasks(client, "newcomer@example.com", 1)

    handed = await handed_out(ctx, [*waiting[AHEAD:], newcomer])
    assert len(handed) == AHEAD
    assert set(handed) & set(waiting)  # the first account's turn came too
