"""Outputs of `format: auto` keep the AVIF and WebP that delivery may pick instead of their JPEG
or PNG (`task_outputs.alternates`, a JSON list; null for an output of one format).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task_outputs") as batch:
        batch.add_column(sa.Column("alternates", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_outputs") as batch:
        batch.drop_column("alternates")
