"""Task outputs (one per variant), presets and assets; results move out of `tasks`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pixelfleet.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", pixelfleet.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_assets_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assets")),
    )
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_assets_user_created", ["user_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "presets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("pipeline", sa.JSON(), nullable=False),
        sa.Column("created_at", pixelfleet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", pixelfleet.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_presets_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_presets")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_presets_user_id_name")),
    )
    with op.batch_alter_table("presets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_presets_user_id"), ["user_id"], unique=False)

    op.create_table(
        "task_outputs",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=True),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", pixelfleet.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_task_outputs_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("task_id", "name", name=op.f("pk_task_outputs")),
    )
    # Existing results become each task's "default" output before their columns go.
    op.execute(
        "INSERT INTO task_outputs (task_id, name, position, key, format, content_type, width,"
        " height, bytes, created_at)"
        " SELECT id, 'default', 0, result_key, result_format, result_content_type, result_width,"
        " result_height, result_bytes, COALESCE(finished_at, updated_at)"
        " FROM tasks WHERE result_format IS NOT NULL"
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("result_bytes")
        batch_op.drop_column("result_height")
        batch_op.drop_column("result_width")
        batch_op.drop_column("result_content_type")
        batch_op.drop_column("result_key")
        batch_op.drop_column("result_format")


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result_format", sa.VARCHAR(length=16), nullable=True))
        batch_op.add_column(sa.Column("result_key", sa.VARCHAR(length=255), nullable=True))
        batch_op.add_column(sa.Column("result_content_type", sa.VARCHAR(length=64), nullable=True))
        batch_op.add_column(sa.Column("result_width", sa.INTEGER(), nullable=True))
        batch_op.add_column(sa.Column("result_height", sa.INTEGER(), nullable=True))
        batch_op.add_column(sa.Column("result_bytes", sa.INTEGER(), nullable=True))
    # The first output of each task goes back into its row; other variants are dropped.
    for column in ("key", "format", "content_type", "width", "height", "bytes"):
        op.execute(
            f"UPDATE tasks SET result_{column} = (SELECT task_outputs.{column} FROM task_outputs"  # noqa: S608 (constant names)
            " WHERE task_outputs.task_id = tasks.id AND task_outputs.position = 0)"
        )

    op.drop_table("task_outputs")
    with op.batch_alter_table("presets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_presets_user_id"))

    op.drop_table("presets")
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_index("ix_assets_user_created")

    op.drop_table("assets")
