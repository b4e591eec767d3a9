from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pixelfleet.db import Base, UTCDateTime, utcnow


class PaymentRefund(Base):
    """A processed Razorpay refund, recorded once by its id when its webhook first arrives,
    whether or not its payment is known or captured here yet: Razorpay does not order its
    webhooks, so a refund may come before the capture it undoes.

    `applied_at` is set when the refund's share of the credits was taken back: at once when its
    payment is already paid, else in the transaction that grants the pack."""

    __tablename__ = "payment_refunds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # rfnd_...
    # The Razorpay payment refunded (pay_...), as `payments.payment_id` holds it once paid.
    payment_id: Mapped[str] = mapped_column(String(64), index=True)
    order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    amount: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
