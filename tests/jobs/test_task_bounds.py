"""A task's own bounds, as a Kubernetes job sets them: a deadline from its submission
(`activeDeadlineSeconds`) and a number of attempts (`backoffLimit` + 1). Past either, the task
fails with a code of its own and is refunded; without them, the service's limits hold."""

from __future__ import annotations

import uuid

import pytest

from pixelfleet.accounts.repository import AccountRepository
from pixelfleet.context import ProcessContext
from pixelfleet.db import unit_of_work
from pixelfleet.jobs import maintenance
from pixelfleet.jobs import service as jobs
from pixelfleet.jobs.placement import Placement
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import image_bytes, noise_png
from tests.records import claim_an_hour_ago, new_user, stored_task

# Database semantics (see tests/conftest.py): on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_backends

GRAY = {"operations": [{"op": "grayscale"}]}
SLOW = {"operations": [{"op": "rotate", "angle": 33}], "output": {"format": "avif"}}


async def placed_task(
    ctx: ProcessContext,
    user_id: uuid.UUID,
    placement: Placement,
    pipeline: dict[str, object] = GRAY,
    image: bytes | None = None,
) -> uuid.UUID:
    staged = ctx.storage.stage()
    staged.file.write(image if image is not None else image_bytes(size=(64, 48)))
    try:
        async with unit_of_work(ctx) as session:
            user = await AccountRepository.from_session(session).user_by_id(user_id)
            assert user is not None
            submission = await jobs.submit_task(
                session,
                ctx.storage,
                user,
                staged,
                pipeline,
                ctx.settings.image_limits,
                ctx.settings.account_quotas,
                placement=placement,
                dispatch_ahead=ctx.settings.dispatch_ahead,
            )
    finally:
        staged.discard()
    return submission.task.id


async def balance(ctx: ProcessContext, user_id: uuid.UUID) -> int:
    async with ctx.read_sessions() as session:
        user = await AccountRepository.from_session(session).user_by_id(user_id)
        assert user is not None
        return user.balance


async def test_a_queued_task_past_its_deadline_fails_and_is_refunded(ctx: ProcessContext) -> None:
    user_id = await new_user(ctx)
    task_id = await placed_task(ctx, user_id, Placement(active_deadline_seconds=0))
    charged = await balance(ctx, user_id)
    assert charged < 100

    assert await maintenance.fail_overdue_tasks(ctx) == 1

    task = await stored_task(ctx, str(task_id))
    assert (task.status, task.error_code) == ("failed", "deadline-exceeded")
    assert task.error_message is not None
    assert "deadline" in task.error_message
    assert await balance(ctx, user_id) == 100
    assert await maintenance.fail_overdue_tasks(ctx) == 0  # refunded once


async def test_a_task_within_its_deadline_is_left_to_run(ctx: ProcessContext) -> None:
    user_id = await new_user(ctx)
    task_id = await placed_task(ctx, user_id, Placement(active_deadline_seconds=3600))

    assert await maintenance.fail_overdue_tasks(ctx) == 0
    assert await drain_queue(ctx) == ["succeeded"]
    assert (await stored_task(ctx, str(task_id))).status == "succeeded"


async def test_a_run_is_stopped_at_the_deadline_rather_than_the_time_limit(
    ctx: ProcessContext,
) -> None:
    user_id = await new_user(ctx)
    task_id = await placed_task(
        ctx, user_id, Placement(active_deadline_seconds=1), SLOW, noise_png((2400, 2400))
    )

    assert await drain_queue(ctx) == ["failed"]

    task = await stored_task(ctx, str(task_id))
    assert (task.status, task.error_code) == ("failed", "deadline-exceeded")
    assert await balance(ctx, user_id) == 100


async def test_a_task_with_no_retries_left_fails_on_its_first_lost_worker(
    ctx: ProcessContext,
) -> None:
    user_id = await new_user(ctx)
    task_id = await placed_task(ctx, user_id, Placement(backoff_limit=0))
    await claim_an_hour_ago(ctx, str(task_id), "worker-that-died")

    await maintenance.recover_stale_tasks(ctx)

    task = await stored_task(ctx, str(task_id))
    assert (task.status, task.error_code) == ("failed", "backoff-limit-exceeded")
    assert task.error_message is not None
    assert "backoffLimit 0" in task.error_message
    assert await balance(ctx, user_id) == 100


async def test_a_task_with_retries_left_goes_back_to_the_queue(ctx: ProcessContext) -> None:
    user_id = await new_user(ctx)
    task_id = await placed_task(ctx, user_id, Placement(backoff_limit=1))
    await claim_an_hour_ago(ctx, str(task_id), "worker-that-died")

    await maintenance.recover_stale_tasks(ctx)

    assert (await stored_task(ctx, str(task_id))).status == "queued"
    await claim_an_hour_ago(ctx, str(task_id), "another-that-died")
    await maintenance.recover_stale_tasks(ctx)
    task = await stored_task(ctx, str(task_id))
    assert (task.status, task.error_code, task.attempts) == ("failed", "backoff-limit-exceeded", 2)
