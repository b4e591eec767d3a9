"""Payments (Razorpay orders and their states), webhook events, and ledger lines tied to them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pixelfleet.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("received_at", pixelfleet.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_events")),
    )
    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_events_order_id"), ["order_id"], unique=False)

    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("pack_id", sa.String(length=32), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("amount_refunded", sa.Integer(), nullable=False),
        sa.Column("credits_reversed", sa.Integer(), nullable=False),
        sa.Column("credits_shortfall", sa.Integer(), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("created_at", pixelfleet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", pixelfleet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("paid_at", pixelfleet.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_payments_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("order_id", name=op.f("uq_payments_order_id")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_payments_payment_id")),
        sa.UniqueConstraint(
            "user_id", "idempotency_key", name=op.f("uq_payments_user_id_idempotency_key")
        ),
    )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index("ix_payments_created", ["created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_payments_user_created", ["user_id", "created_at", "id"], unique=False
        )

    with op.batch_alter_table("credit_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("reference", sa.String(length=128), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_credit_entries_payment_id"), ["payment_id"], unique=False
        )
        batch_op.create_unique_constraint(batch_op.f("uq_credit_entries_reference"), ["reference"])
        batch_op.create_foreign_key(
            batch_op.f("fk_credit_entries_payment_id_payments"),
            "payments",
            ["payment_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("credit_entries", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_credit_entries_payment_id_payments"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_credit_entries_reference"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_credit_entries_payment_id"))
        batch_op.drop_column("reference")
        batch_op.drop_column("payment_id")

    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("ix_payments_user_created")
        batch_op.drop_index("ix_payments_created")

    op.drop_table("payments")
    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_events_order_id"))

    op.drop_table("payment_events")
