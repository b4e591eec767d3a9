from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PaymentStatus = Literal["created", "paid", "failed", "partially_refunded", "refunded"]


class PackOut(BaseModel):
    id: str
    credits: int
    amount: int = Field(description="The price in the currency's smallest unit (paise for INR).")
    currency: str


class PackList(BaseModel):
    items: list[PackOut]


class OrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pack_id: str = Field(min_length=1, max_length=32, examples=["starter"])


class OrderOut(BaseModel):
    """What Razorpay Checkout needs: open it with `key_id`, `order_id`, `amount`, `currency`."""

    id: uuid.UUID = Field(description="This purchase in PixelFleet.")
    order_id: str
    amount: int
    currency: str
    key_id: str
    pack_id: str
    credits: int
    status: PaymentStatus


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    razorpay_order_id: str = Field(min_length=1, max_length=64, examples=["order_NkQ3dX8v2YbZ1p"])
    razorpay_payment_id: str = Field(min_length=1, max_length=64, examples=["pay_NkQ4Lm0aB7cD2e"])
    razorpay_signature: str = Field(
        min_length=1,
        max_length=256,
        examples=["5d41402abc4b2a76b9719d911017c592e0c9f1a7c6d8b4e3f2a1908172635445"],
    )


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    pack_id: str
    credits: int
    amount: int
    currency: str
    status: PaymentStatus
    order_id: str
    payment_id: str | None
    amount_refunded: int
    credits_reversed: int = Field(description="Credits refunds took back (with the shortfall).")
    credits_shortfall: int = Field(
        description="Of those, the credits the balance no longer held when the refund came."
    )
    failure_reason: str | None
    created_at: datetime
    paid_at: datetime | None


class PaymentPage(BaseModel):
    items: list[PaymentOut]
    next_cursor: str | None


class WebhookAck(BaseModel):
    status: Literal["processed", "duplicate", "ignored"]
    detail: str
