"""Direct uploads (`POST /v1/uploads`): one row per upload, walled per user on PostgreSQL like
every table of a user's rows (see 0006_row_level_security). Tasks record how their image came
(`source_kind`: file, url, upload, task or asset) and what the submission named (`source_ref`).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pixelfleet.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "pixelfleet_api"
SETTING = "pixelfleet.user_id"
POLICY = "owner_only"


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", pixelfleet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", pixelfleet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", pixelfleet.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("purged_at", pixelfleet.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_uploads_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
    )
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_uploads_user_created", ["user_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_uploads_expires", ["expires_at"], unique=False)
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source_kind", sa.String(length=8), server_default="file", nullable=False)
        )
        batch_op.add_column(sa.Column("source_ref", sa.Text(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        owner = f"user_id = NULLIF(current_setting('{SETTING}', true), '')::uuid"
        op.execute("ALTER TABLE uploads ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {POLICY} ON uploads TO {ROLE} USING ({owner}) WITH CHECK ({owner})"
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("source_ref")
        batch_op.drop_column("source_kind")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP POLICY IF EXISTS {POLICY} ON uploads")
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_index("ix_uploads_expires")
        batch_op.drop_index("ix_uploads_user_created")
    op.drop_table("uploads")
