"""Payments against a fake Razorpay that speaks Razorpay's API on a loopback port and signs like
Razorpay; steps the payment tests share; and the books check run after each of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from pixelfleet.settings import CreditPack, Settings
from tests.api_helpers import balance_of, whole_ledger
from tests.harness.razorpay import FakeRazorpay

PACKS = (
    CreditPack(id="starter", credits=500, amount=49_900),
    CreditPack(id="small", credits=10, amount=1_000),
)


@pytest.fixture
def razorpay() -> Iterator[FakeRazorpay]:
    with FakeRazorpay() as fake:
        yield fake


@pytest.fixture
def settings(settings: Settings, razorpay: FakeRazorpay) -> Settings:
    return settings.model_copy(
        update={
            "credit_packs": PACKS,
            "razorpay_key_id": razorpay.key_id,
            "razorpay_key_secret": SecretStr(razorpay.key_secret),
            "razorpay_webhook_secret": SecretStr(razorpay.webhook_secret),
            "razorpay_base_url": razorpay.base_url,
            "razorpay_timeout_seconds": 2.0,
        }
    )


async def order(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    pack_id: str = "starter",
    key: str | None = None,
) -> dict[str, Any]:
    extra = {"Idempotency-Key": key} if key else {}
    response = await client.post(
        "/v1/payments/orders", headers={**headers, **extra}, json={"pack_id": pack_id}
    )
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def checkout(
    razorpay: FakeRazorpay, order_id: str, **pay: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """The customer pays in Checkout: the payment, and what the success handler receives."""
    payment = razorpay.pay(order_id, **pay)
    handed_over = {
        "razorpay_order_id": order_id,
        "razorpay_payment_id": payment["id"],
        "razorpay_signature": razorpay.checkout_signature(order_id, payment["id"]),
    }
    return payment, handed_over


async def deliver(
    client: httpx.AsyncClient, webhook: tuple[bytes, dict[str, str]]
) -> httpx.Response:
    body, headers = webhook
    return await client.post("/v1/payments/webhook", content=body, headers=headers)


async def payments_of(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = (await client.get("/v1/payments", headers=headers, params=params)).json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


async def assert_books_balance(
    client: httpx.AsyncClient, headers: dict[str, str], signup_credits: int
) -> None:
    """The ledger sums to the balance, and the credits granted equal the packs paid for (less
    what refunds took back)."""
    ledger = await whole_ledger(client, headers)
    balance = await balance_of(client, headers)
    assert sum(entry["amount"] for entry in ledger) == balance
    granted = sum(entry["amount"] for entry in ledger if entry["kind"] == "purchase")
    taken = -sum(entry["amount"] for entry in ledger if entry["kind"] == "purchase_reversal")
    payments = await payments_of(client, headers)
    paid = [p for p in payments if p["status"] in ("paid", "partially_refunded", "refunded")]
    assert granted == sum(p["credits"] for p in paid)
    assert taken == sum(p["credits_reversed"] - p["credits_shortfall"] for p in paid)
    other = sum(e["amount"] for e in ledger if e["kind"] not in ("purchase", "purchase_reversal"))
    assert balance == granted - taken + other
    assert [e["amount"] for e in ledger if e["kind"] == "grant"] == (
        [signup_credits] if signup_credits else []
    )
