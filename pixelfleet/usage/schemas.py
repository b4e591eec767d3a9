"""The usage report (`GET /v1/usage`) and the rules of its buckets.

- Credits come from the ledger: `credits_spent` is the gross of the `task_debit` lines (every
  task charge, images made on demand for derivative URLs included: those are tasks too) and
  `credits_refunded` the sum of the `task_refund` lines (a failed task, or one cancelled
  before it started). A line counts in the bucket of the moment it was written: a refund given
  the day after its task is that later day's. Grants, purchases and an administrator's
  adjustments are not usage. So over any range, grouped by day or API key, the sum of
  `credits_spent - credits_refunded` is the ledger's net task charges in that range.
- Tasks, `megapixels_in` (the source's width x height) and `bytes_out` (every stored file of
  the task's outputs, the AVIF and WebP of a `format: auto` output included) count in the
  bucket of the task's creation, whatever its state; `tasks` counts those that ended
  `succeeded`, `failed` or `cancelled` (a task still queued or running counts in none yet).
- `day`: one bucket per UTC day of the range, oldest first, days without usage included (with
  zeros), keyed `YYYY-MM-DD`, so a chart needs no gap filling.
- `api_key`: one bucket per API key that submitted tasks in the range, keyed by its id, with
  its `name`; the bucket keyed null holds tasks submitted by an interactive login (the web
  console) and those made by reading a derivative URL.
- `operation`: one bucket per operation named in the tasks' pipelines (shared operations and
  each variant's), keyed by its name. A task that uses three operations counts in three
  buckets, each with the task's whole charge (an operation's bucket answers "what did the tasks
  using it cost"), so these buckets add up to more than the account's total; a task using the
  same operation twice counts once in its bucket. Tasks without operations (only a format
  change) are in the bucket keyed null.
- `api_key` and `operation` buckets list only keys with usage in the range, the largest
  `credits_spent` first (ties by key).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

GroupBy = Literal["day", "api_key", "operation"]

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30


class UsageTaskCounts(BaseModel):
    succeeded: int = Field(description="Tasks of the bucket that succeeded.")
    failed: int = Field(description="Tasks of the bucket that failed (and were refunded).")
    cancelled: int = Field(description="Tasks of the bucket that were cancelled.")


class UsageBucket(BaseModel):
    key: str | None = Field(
        description="The day (`YYYY-MM-DD`, UTC), the API key's id (null: an interactive "
        "login or a derivative URL), or the operation's name (null: tasks without "
        "operations).",
        examples=["2026-12-07"],
    )
    name: str | None = Field(
        default=None, description="With `group_by=api_key`: the key's name; else null."
    )
    credits_spent: int = Field(description="Credits charged for tasks (gross, before refunds).")
    credits_refunded: int = Field(description="Credits given back for tasks.")
    tasks: UsageTaskCounts
    megapixels_in: float = Field(description="Millions of source pixels of the bucket's tasks.")
    bytes_out: int = Field(description="Bytes of every stored output of the bucket's tasks.")


class UsageOut(BaseModel):
    buckets: list[UsageBucket]
