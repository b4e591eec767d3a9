"""All SQL of the usage report: one aggregate query over the ledger and one over the tasks for
each grouping, so the database adds up the rows (never the process).

The two backends differ only in two expressions: a timestamp's UTC day, and the operations a
task's pipeline names (its JSON read with SQLite's `json_each`, PostgreSQL's
`json_array_elements`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Select,
    String,
    Subquery,
    and_,
    case,
    cast,
    column,
    func,
    literal,
    literal_column,
    select,
    true,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import JSON

from pixelfleet.jobs.states import CANCELLED, FAILED, SUCCEEDED
from pixelfleet.models import ApiKey, CreditEntry, Task, TaskOutput
from pixelfleet.usage.schemas import GroupBy

DEBIT = "task_debit"
REFUND = "task_refund"


@dataclass(frozen=True)
class CreditSums:
    spent: int
    refunded: int


@dataclass(frozen=True)
class TaskSums:
    succeeded: int
    failed: int
    cancelled: int
    pixels: int
    bytes_out: int


NO_NAME: ColumnElement[Any] = literal(None, String)
"""The name of a bucket that has none (any but an API key's)."""

BucketKey = tuple[str | None, str | None]
"""A bucket's key, and its name (an API key's)."""


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    @classmethod
    def from_session(cls, session: AsyncSession) -> UsageRepository:
        return cls(session)

    def _day(self, moment: Any) -> ColumnElement[str]:
        """The UTC day of a stored timestamp, as `YYYY-MM-DD`."""
        if self.dialect == "postgresql":
            # Constants, not bound parameters: the same expression is grouped by, and
            # PostgreSQL tells two statements' parameters apart.
            utc: ColumnElement[str] = literal_column("'UTC'")
            pattern: ColumnElement[str] = literal_column("'YYYY-MM-DD'")
            return func.to_char(func.timezone(utc, moment), pattern)
        return func.date(moment)  # SQLite keeps UTC timestamps as text

    def _operations(self, user_id: uuid.UUID, end: datetime) -> Subquery:
        """(task_id, op): each operation each of the user's tasks created before `end` names,
        once per task (the ledger lines of a range may be of tasks created before it)."""
        shared_tasks = Task.__table__.alias("shared_tasks")
        variant_tasks = Task.__table__.alias("variant_tasks")
        if self.dialect == "postgresql":
            shared = func.json_array_elements(shared_tasks.c.pipeline.op("->")("operations"))
            shared_ops = shared.table_valued(column("value", JSON)).alias("shared_op")
            variants = func.json_array_elements(variant_tasks.c.pipeline.op("->")("variants"))
            variant = variants.table_valued(column("value", JSON)).alias("variant")
            own = func.json_array_elements(variant.c.value.op("->")("operations"))
            own_ops = own.table_valued(column("value", JSON)).alias("own_op")
            shared_name: ColumnElement[Any] = shared_ops.c.value.op("->>")("op")
            own_name: ColumnElement[Any] = own_ops.c.value.op("->>")("op")
        else:
            shared = func.json_each(shared_tasks.c.pipeline, "$.operations")
            shared_ops = shared.table_valued(column("value", JSON)).alias("shared_op")
            variants = func.json_each(variant_tasks.c.pipeline, "$.variants")
            variant = variants.table_valued(column("value", JSON)).alias("variant")
            own = func.json_each(variant.c.value, "$.operations")
            own_ops = own.table_valued(column("value", JSON)).alias("own_op")
            shared_name = func.json_extract(shared_ops.c.value, "$.op")
            own_name = func.json_extract(own_ops.c.value, "$.op")
        named_shared: Select[Any] = (
            select(shared_tasks.c.id.label("task_id"), cast(shared_name, String).label("op"))
            .select_from(shared_tasks)
            .join(shared_ops, true())
            .where(shared_tasks.c.user_id == user_id, shared_tasks.c.created_at < end)
        )
        named_in_variants: Select[Any] = (
            select(variant_tasks.c.id.label("task_id"), cast(own_name, String).label("op"))
            .select_from(variant_tasks)
            .join(variant, true())
            .join(own_ops, true())
            .where(variant_tasks.c.user_id == user_id, variant_tasks.c.created_at < end)
        )
        # UNION (not ALL): a task naming an operation twice is one task of its bucket.
        return union(named_shared, named_in_variants).subquery("task_operations")

    def _alternates_bytes(self) -> ColumnElement[int]:
        """The bytes of an output's alternates (the AVIF and WebP of `format: auto`)."""
        if self.dialect == "postgresql":
            listed = case(
                (func.json_typeof(TaskOutput.alternates) == "array", TaskOutput.alternates)
            )
            each = func.json_array_elements(listed).table_valued(column("value", JSON))
            size = cast(each.c.value.op("->>")("bytes"), BigInteger)
        else:
            each = func.json_each(TaskOutput.alternates).table_valued(column("value", JSON))
            size = cast(func.json_extract(each.c.value, "$.bytes"), BigInteger)
        return (
            select(func.coalesce(func.sum(size), 0)).select_from(each).scalar_subquery()
        )

    def _output_bytes(self) -> Subquery:
        """(task_id, bytes): every stored file of each task's outputs."""
        return (
            select(
                TaskOutput.task_id,
                func.sum(TaskOutput.bytes + self._alternates_bytes()).label("bytes"),
            )
            .group_by(TaskOutput.task_id)
            .subquery("output_bytes")
        )

    async def credits(
        self, user_id: uuid.UUID, group_by: GroupBy, start: datetime, end: datetime
    ) -> dict[BucketKey, CreditSums]:
        """Task debits (gross) and refunds written in [start, end), by bucket."""
        spent = func.sum(case((CreditEntry.kind == DEBIT, -CreditEntry.amount), else_=0))
        refunded = func.sum(case((CreditEntry.kind == REFUND, CreditEntry.amount), else_=0))
        source: FromClause = CreditEntry.__table__
        key: ColumnElement[Any]
        name: ColumnElement[Any] = NO_NAME
        if group_by == "day":
            key = self._day(CreditEntry.created_at)
        elif group_by == "api_key":
            source = source.outerjoin(Task, Task.id == CreditEntry.task_id).outerjoin(
                ApiKey, ApiKey.id == Task.api_key_id
            )
            key, name = Task.__table__.c.api_key_id, ApiKey.__table__.c.name
        else:
            operations = self._operations(user_id, end)
            source = source.outerjoin(operations, operations.c.task_id == CreditEntry.task_id)
            key = operations.c.op
        statement = (
            select(key.label("key"), name.label("name"), spent, refunded)
            .select_from(source)
            .where(
                CreditEntry.user_id == user_id,
                CreditEntry.kind.in_((DEBIT, REFUND)),
                CreditEntry.created_at >= start,
                CreditEntry.created_at < end,
            )
            .group_by(*_grouped(key, name))
        )
        rows = (await self.session.execute(statement)).all()
        return {
            _bucket_key(row[0], row[1]): CreditSums(int(row[2] or 0), int(row[3] or 0))
            for row in rows
        }

    async def tasks(
        self, user_id: uuid.UUID, group_by: GroupBy, start: datetime, end: datetime
    ) -> dict[BucketKey, TaskSums]:
        """The tasks created in [start, end): how they ended, their source pixels and their
        outputs' bytes, by bucket."""
        outputs = self._output_bytes()
        source: FromClause = Task.__table__.outerjoin(outputs, outputs.c.task_id == Task.id)
        key: ColumnElement[Any]
        name: ColumnElement[Any] = NO_NAME
        if group_by == "day":
            key = self._day(Task.created_at)
        elif group_by == "api_key":
            source = source.outerjoin(ApiKey, ApiKey.id == Task.api_key_id)
            key, name = Task.__table__.c.api_key_id, ApiKey.__table__.c.name
        else:
            operations = self._operations(user_id, end)
            source = source.outerjoin(operations, operations.c.task_id == Task.id)
            key = operations.c.op

        def ended(status: str) -> ColumnElement[int]:
            return func.sum(case((Task.status == status, 1), else_=0))

        pixels = func.sum(cast(Task.source_width, BigInteger) * Task.source_height)
        statement = (
            select(
                key.label("key"),
                name.label("name"),
                ended(SUCCEEDED),
                ended(FAILED),
                ended(CANCELLED),
                pixels,
                func.sum(func.coalesce(outputs.c.bytes, 0)),
            )
            .select_from(source)
            .where(and_(Task.user_id == user_id, Task.created_at >= start, Task.created_at < end))
            .group_by(*_grouped(key, name))
        )
        rows = (await self.session.execute(statement)).all()
        return {
            _bucket_key(row[0], row[1]): TaskSums(
                *(int(value or 0) for value in row[2:7])
            )
            for row in rows
        }


def _grouped(key: ColumnElement[Any], name: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    """What a statement groups by: its key, and its name when that is a column (PostgreSQL
    refuses a constant in GROUP BY)."""
    return [key] if name is NO_NAME else [key, name]


def _bucket_key(key: object, name: object) -> BucketKey:
    return (None if key is None else str(key), None if name is None else str(name))


