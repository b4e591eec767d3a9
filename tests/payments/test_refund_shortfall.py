"""A refund after the credits were spent: the balance goes to zero, not below, and the part it
no longer held is recorded as the payment's shortfall."""

from __future__ import annotations

import httpx
import pytest

from pixelfleet.settings import Settings
from tests.api_helpers import balance_of, sign_up, submit, whole_ledger
from tests.harness.razorpay import FakeRazorpay
from tests.payments.conftest import assert_books_balance, checkout, deliver, order, payments_of

# Database semantics (see tests/conftest.py): on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_backends

SIGNUP = 0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"signup_credits": SIGNUP})


async def test_a_refund_never_takes_the_balance_below_zero_and_records_the_shortfall(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "spender@example.com")
    opened = await order(client, headers, pack_id="small")
    payment, handed_over = checkout(razorpay, opened["order_id"])
    await client.post("/v1/payments/verify", headers=headers, json=handed_over)
    for _ in range(3):  # spend what was bought (a grayscale task costs 2 credits)
        spent = await submit(client, headers, {"operations": [{"op": "grayscale"}]})
        assert spent.status_code == 202, spent.text
    left = await balance_of(client, headers)
    assert left == SIGNUP + 10 - 6

    refund = razorpay.refund(payment["id"])
    await deliver(
        client,
        razorpay.webhook(
            "refund.processed", refund=refund, payment=razorpay.payment(payment["id"])
        ),
    )

    assert await balance_of(client, headers) == 0
    [recorded] = await payments_of(client, headers)
    assert (recorded["credits_reversed"], recorded["credits_shortfall"]) == (10, 10 - left)
    ledger = await whole_ledger(client, headers)
    assert [e["amount"] for e in ledger if e["kind"] == "purchase_reversal"] == [-left]
    await assert_books_balance(client, headers, SIGNUP)
