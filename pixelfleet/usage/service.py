"""The usage report of an account (`GET /v1/usage`): its range read and checked, its buckets
added up by the database and laid out as `schemas` says."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.errors import FieldError, InvalidInput
from pixelfleet.usage.repository import BucketKey, CreditSums, TaskSums, UsageRepository
from pixelfleet.usage.schemas import (
    DEFAULT_RANGE_DAYS,
    MAX_RANGE_DAYS,
    GroupBy,
    UsageBucket,
    UsageOut,
    UsageTaskCounts,
)

NO_CREDITS = CreditSums(0, 0)
NO_TASKS = TaskSums(0, 0, 0, 0, 0)


@dataclass(frozen=True)
class UsageRange:
    """The instants [start, end) a report covers."""

    start: datetime
    end: datetime

    def days(self) -> list[date]:
        """Each UTC day the range touches, oldest first."""
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


FIRST_YEAR, LAST_YEAR = 1970, 9998


def _moment(text: str, field: str) -> date | datetime:
    """An ISO date (`2026-12-07`) or date-time (`2026-12-07T10:00:00Z`; UTC when it names no
    offset)."""
    try:
        moment: date | datetime = (
            date.fromisoformat(text)
            if len(text) == len("YYYY-MM-DD")
            else datetime.fromisoformat(text)
        )
    except ValueError:
        raise InvalidInput(
            f"`{field}` must be an ISO date or date-time.",
            errors=[FieldError(field, "expected a date (YYYY-MM-DD) or an ISO date-time")],
        ) from None
    # Far from the calendar's ends, so that a day more or a month less is still a date.
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise InvalidInput(
            f"`{field}` must be a date from {FIRST_YEAR} to {LAST_YEAR}.",
            errors=[FieldError(field, f"a year from {FIRST_YEAR} to {LAST_YEAR}")],
        )
    if not isinstance(moment, datetime):
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def usage_range(start_text: str | None, end_text: str | None, now: datetime) -> UsageRange:
    """The range `from` and `to` name. A date `from` starts at its day's first instant; a date
    `to` takes in its whole day (a date-time is that instant, excluded). Without `to`: to the
    end of today (UTC); without `from`: the 30 days that end with `to`'s day. `from` must come
    before `to` (the same date is one whole day), and at most 366 days before it."""
    end_at = _moment(end_text, "to") if end_text else now.astimezone(UTC).date()
    end = end_at if isinstance(end_at, datetime) else _start_of(end_at + timedelta(days=1))
    if start_text:
        start_at = _moment(start_text, "from")
        start = start_at if isinstance(start_at, datetime) else _start_of(start_at)
    else:
        last_day = (end - timedelta(microseconds=1)).date()
        start = _start_of(last_day - timedelta(days=DEFAULT_RANGE_DAYS - 1))
    if start >= end:
        raise InvalidInput(
            "`from` is after `to`.", errors=[FieldError("from", "must come before `to`")]
        )
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        raise InvalidInput(
            f"A usage report covers at most {MAX_RANGE_DAYS} days.",
            errors=[FieldError("from", f"at most {MAX_RANGE_DAYS} days before `to`")],
        )
    return UsageRange(start, end)


def _bucket(key: BucketKey, credits: CreditSums, tasks: TaskSums) -> UsageBucket:
    return UsageBucket(
        key=key[0],
        name=key[1],
        credits_spent=credits.spent,
        credits_refunded=credits.refunded,
        tasks=UsageTaskCounts(
            succeeded=tasks.succeeded, failed=tasks.failed, cancelled=tasks.cancelled
        ),
        megapixels_in=round(tasks.pixels / 1_000_000, 6),
        bytes_out=tasks.bytes_out,
    )


async def usage_of(
    session: AsyncSession, user_id: uuid.UUID, group_by: GroupBy, period: UsageRange
) -> UsageOut:
    """The account's usage in `period`, grouped by `group_by` (the rules: `schemas`)."""
    repo = UsageRepository.from_session(session)
    credits = await repo.credits(user_id, group_by, period.start, period.end)
    tasks = await repo.tasks(user_id, group_by, period.start, period.end)
    if group_by == "day":
        keys: list[BucketKey] = [(day.isoformat(), None) for day in period.days()]
    else:
        found = set(credits) | set(tasks)
        keys = sorted(
            found,
            key=lambda key: (-credits.get(key, NO_CREDITS).spent, key[0] is None, key[0] or ""),
        )
    return UsageOut(
        buckets=[
            _bucket(key, credits.get(key, NO_CREDITS), tasks.get(key, NO_TASKS)) for key in keys
        ]
    )
