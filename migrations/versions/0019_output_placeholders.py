"""Placeholders: an output that asks for one keeps its BlurHash or ThumbHash string and its
dominant colour beside its files.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task_outputs") as batch:
        batch.add_column(sa.Column("placeholder", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("dominant_color", sa.String(length=7), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_outputs") as batch:
        batch.drop_column("dominant_color")
        batch.drop_column("placeholder")
