"""Rows written straight through the services, for tests below the HTTP API."""

from __future__ import annotations

import uuid
from datetime import timedelta

from pixelfleet.accounts import service as accounts
from pixelfleet.context import ProcessContext
from pixelfleet.db import utcnow
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.models import Task
from tests.api_helpers import PASSWORD


async def new_user(ctx: ProcessContext, credits_at_signup: int = 100) -> uuid.UUID:
    """A registered user with `credits_at_signup` credits."""
    async with ctx.sessions.begin() as session:
        user = await accounts.register(
            session,
            f"{uuid.uuid4().hex[:8]}@example.com",
            PASSWORD,
            signup_credits=credits_at_signup,
        )
        return user.id


async def new_task(ctx: ProcessContext, user_id: uuid.UUID, cost: int) -> uuid.UUID:
    """A queued task of `user_id` costing `cost` (its source is never read)."""
    async with ctx.sessions.begin() as session:
        task = Task(
            user_id=user_id,
            cost=cost,
            pipeline={},
            source_key="sources/x",
            source_format="png",
            source_width=1,
            source_height=1,
            source_bytes=1,
        )
        session.add(task)
        await session.flush()
        return task.id


async def stored_task(ctx: ProcessContext, task_id: str) -> Task:
    """The task's row as the database has it now."""
    async with ctx.sessions() as session:
        task = await TaskRepository.from_session(session).get(uuid.UUID(task_id))
        assert task is not None
        return task


async def claim(
    ctx: ProcessContext, task_id: str, worker: str, started_ago: timedelta = timedelta(0)
) -> None:
    """`worker` claims the queued task, as if it had started `started_ago`."""
    async with ctx.sessions.begin() as session:
        assert await TaskRepository.from_session(session).claim(
            uuid.UUID(task_id), worker, utcnow() - started_ago
        )


async def claim_an_hour_ago(ctx: ProcessContext, task_id: str, worker: str) -> None:
    """`worker` claims the task as if it had started an hour ago (and then gone quiet)."""
    await claim(ctx, task_id, worker, timedelta(hours=1))
