"""Derivative URLs: `derivatives` records which task made a stored source through a preset in
one negotiated format (unique, so concurrent first requests derive and charge once), walled per
user on PostgreSQL like every table of a user's rows; `users.delivery_key_salt` is what each
account's delivery key is derived from (a new salt ends every URL signed before).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pixelfleet.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "pixelfleet_api"
SETTING = "pixelfleet.user_id"
POLICY = "owner_only"


def upgrade() -> None:
    op.create_table(
        "derivatives",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("source_kind", sa.String(length=8), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("preset", sa.String(length=64), nullable=False),
        sa.Column("preset_digest", sa.String(length=32), nullable=False),
        sa.Column("choice", sa.String(length=16), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", pixelfleet.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_derivatives_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_derivatives_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_derivatives")),
        sa.UniqueConstraint(
            "user_id",
            "source_kind",
            "source_id",
            "preset",
            "preset_digest",
            "choice",
            name="uq_derivatives_key",
        ),
    )
    with op.batch_alter_table("derivatives", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_derivatives_task_id"), ["task_id"], unique=False)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery_key_salt", sa.String(length=64), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        owner = f"user_id = NULLIF(current_setting('{SETTING}', true), '')::uuid"
        op.execute("ALTER TABLE derivatives ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {POLICY} ON derivatives TO {ROLE} USING ({owner}) WITH CHECK ({owner})"
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("delivery_key_salt")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP POLICY IF EXISTS {POLICY} ON derivatives")
    with op.batch_alter_table("derivatives", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_derivatives_task_id"))
    op.drop_table("derivatives")
