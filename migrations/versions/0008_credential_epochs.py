"""Credential epochs: ending every login of an account at once (deactivation, a change of
credentials) refuses the tokens issued before, even after the account is switched back on.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A server default: rows written by a release that does not know the column yet (during a
    # rolling upgrade) start in epoch 0, as every existing row does.
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("credential_epoch", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("credential_epoch", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_column("credential_epoch")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("credential_epoch")
