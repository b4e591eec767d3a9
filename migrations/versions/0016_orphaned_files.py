"""Orphaned files: the stored files whose rows are gone (an erased account's), noted in the
transaction that deleted the rows, so that the upkeep deletes any that the storage did not let
go at once. Not a user's table (the key names no account once its rows are gone).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pixelfleet.db

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orphaned_files",
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column("created_at", pixelfleet.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_orphaned_files")),
    )


def downgrade() -> None:
    op.drop_table("orphaned_files")
