"""Erased accounts: `users.erased_at` says when an account was erased (`DELETE /v1/me`, or an
administrator's `DELETE /v1/admin/users/{id}`). The row stays, anonymised, because its
payments and ledger lines are kept for accounting; every other row of the account is gone.
The foreign keys already allow it: ledger lines keep their account, and lose their task
(`credit_entries.task_id` is ON DELETE SET NULL since 0001).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pixelfleet.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("erased_at", pixelfleet.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
