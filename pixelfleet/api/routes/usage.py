from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from pixelfleet.api.deps import CreditReader, ReadSessionDep
from pixelfleet.api.problems import problem_responses
from pixelfleet.db import utcnow
from pixelfleet.errors import InvalidInput
from pixelfleet.usage import service as usage
from pixelfleet.usage.schemas import GroupBy, UsageOut

router = APIRouter(prefix="/v1", tags=["account"])


@router.get("/usage", response_model=UsageOut, responses=problem_responses(InvalidInput))
async def my_usage(
    user: CreditReader,
    session: ReadSessionDep,
    start: Annotated[
        str | None,
        Query(
            alias="from",
            max_length=40,
            description="An ISO date (from its first instant, UTC) or date-time. "
            "Default: 29 days before `to`'s day.",
            examples=["2026-11-08"],
        ),
    ] = None,
    end: Annotated[
        str | None,
        Query(
            alias="to",
            max_length=40,
            description="An ISO date (its whole day, UTC) or date-time (excluded). "
            "Default: today. At most 366 days after `from`.",
            examples=["2026-12-07"],
        ),
    ] = None,
    group_by: Annotated[GroupBy, Query(description="How the buckets are cut.")] = "day",
) -> UsageOut:
    """What the account spent, and on what, from the ledger and its tasks (an API key needs
    `credits:read`). `credits_spent` is the gross of task charges, `credits_refunded` what
    failed and cancelled tasks gave back: each counted when the ledger wrote it, so by day or
    API key, spent minus refunded over a range is the ledger's net task charges in it. Tasks,
    `megapixels_in` and `bytes_out` count on the task's creation.

    `day`: every UTC day of the range, oldest first, zeros included. `api_key`: each key that
    submitted tasks (key null: an interactive login, or a derivative URL), with its `name`.
    `operation`: each operation the tasks' pipelines name; a task with three operations counts
    in three buckets, with its whole charge in each (key null: tasks without operations).
    These two list only keys with usage, the largest `credits_spent` first."""
    period = usage.usage_range(start, end, utcnow())
    return await usage.usage_of(session, user.id, group_by, period)
