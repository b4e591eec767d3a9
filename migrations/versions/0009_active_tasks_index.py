"""An index on tasks (user_id, status): a submission counts the user's queued and running tasks
(PIXELFLEET_MAX_ACTIVE_TASKS_PER_USER).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tasks_user_status", "tasks", ["user_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tasks_user_status", table_name="tasks")
