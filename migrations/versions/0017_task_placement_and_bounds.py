"""What a task made for a Kubernetes resource carries beside its work:

- `queue` (the Celery queue it is sent to; null: the sender's own) and `priority` (0-9, higher
  runs first within the queue);
- `budget` (the `namespace/name` of the CreditBinding it was charged under; its spend is the
  sum of its tasks' ledger lines) and `resource_name` (the ImageJob that asked for it, when that
  job was applied by hand rather than made by PixelFleet as `task-<id>`);
- `deadline_at` and `max_attempts`: the job's `activeDeadlineSeconds` (from its admission) and
  `backoffLimit` (attempts after the first), past which it fails.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pixelfleet.db

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("budget", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("resource_name", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("deadline_at", pixelfleet.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("max_attempts", sa.Integer(), nullable=True))
        # A binding's spend is summed over its tasks at every admission.
        batch_op.create_index(batch_op.f("ix_tasks_budget"), ["budget"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_budget"))
        for column in (
            "max_attempts",
            "deadline_at",
            "resource_name",
            "budget",
            "priority",
            "queue",
        ):
            batch_op.drop_column(column)
