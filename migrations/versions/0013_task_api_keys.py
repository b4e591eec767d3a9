"""`tasks.api_key_id`: which API key submitted a task (null for an interactive login, for a
task made by reading a derivative URL, and once the key is deleted), so that usage can be
told apart by key (`GET /v1/usage?group_by=api_key`). Tasks already walled per user on
PostgreSQL stay so: a new column changes no policy.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("api_key_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tasks_api_key_id_api_keys"),
            "api_keys",
            ["api_key_id"],
            ["id"],
            ondelete="SET NULL",
        )
        # Deleting a key nulls its tasks' column: without the index, a scan of every task.
        batch_op.create_index(batch_op.f("ix_tasks_api_key_id"), ["api_key_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_api_key_id"))
        batch_op.drop_constraint(batch_op.f("fk_tasks_api_key_id_api_keys"), type_="foreignkey")
        batch_op.drop_column("api_key_id")
