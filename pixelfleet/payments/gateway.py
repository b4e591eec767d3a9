"""The payment provider port (its Razorpay adapter is `pixelfleet/payments/razorpay.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ProviderOrder:
    id: str
    amount: int
    currency: str


@dataclass(frozen=True)
class ProviderPayment:
    id: str
    order_id: str | None
    amount: int
    currency: str
    status: str  # created | authorized | captured | refunded | failed


class PaymentGateway(Protocol):
    key_id: str

    async def create_order(
        self, amount: int, currency: str, receipt: str, notes: dict[str, str]
    ) -> ProviderOrder: ...

    async def fetch_payment(self, payment_id: str) -> ProviderPayment: ...
