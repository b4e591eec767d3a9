from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from pixelfleet.db import Base, UTCDateTime, utcnow


class Payment(Base):
    """One purchase of a credit pack: a Razorpay order and what became of it.

    `status`: created -> paid -> partially_refunded | refunded; created -> failed (a failed attempt;
    the same order may still be paid). `credits_reversed` counts the credits refunds took back,
    including `credits_shortfall`, the part the balance no longer held."""

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        Index("ix_payments_user_created", "user_id", "created_at", "id"),
        Index("ix_payments_created", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    pack_id: Mapped[str] = mapped_column(String(32))
    credits: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(24), default="created")
    order_id: Mapped[str] = mapped_column(String(64), unique=True)
    payment_id: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    amount_refunded: Mapped[int] = mapped_column(Integer, default=0)
    credits_reversed: Mapped[int] = mapped_column(Integer, default=0)
    credits_shortfall: Mapped[int] = mapped_column(Integer, default=0)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
