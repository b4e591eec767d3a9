"""Razorpay does not order its webhooks: whatever order a payment's capture, `order.paid`, its
refunds and the checkout's verification arrive in, however often each arrives, and even all at
once, the payment ends as if they had come in their natural order: its pack granted once, each
refund's share taken back once, the ledger summing to the balance."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pixelfleet.settings import Settings
from tests.api_helpers import balance_of, sign_up
from tests.harness.razorpay import FakeRazorpay
from tests.payments.conftest import assert_books_balance, checkout, deliver, order

# Database semantics (see tests/conftest.py): on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_backends

SIGNUP = 0
# The "small" pack: 10 credits for 1000 paise. Two partial refunds, of 3 and 2 credits' worth.
FIRST_REFUND, SECOND_REFUND = 300, 200

Step = Callable[[], Awaitable[httpx.Response]]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"signup_credits": SIGNUP})


@dataclass
class Purchase:
    """A paid and partly refunded purchase at Razorpay, and what reaches PixelFleet about it."""

    id: str  # the payment in PixelFleet
    refunds: tuple[str, str]
    steps: dict[str, Step]  # each arrival once
    again: dict[str, Step]  # each arrival again: the same event redelivered, a refund resent


async def _purchase(
    client: httpx.AsyncClient, headers: dict[str, str], razorpay: FakeRazorpay
) -> Purchase:
    """Everything happens at Razorpay first (paid, captured, refunded twice); the webhooks and
    the verification then reach PixelFleet in whatever order a test sends them."""
    opened = await order(client, headers, pack_id="small")
    payment, handed_over = checkout(razorpay, opened["order_id"])
    first = razorpay.refund(payment["id"], amount=FIRST_REFUND)
    after_first = razorpay.payment(payment["id"])
    second = razorpay.refund(payment["id"], amount=SECOND_REFUND)
    at_order = razorpay.order(opened["order_id"])

    def webhooks() -> dict[str, tuple[bytes, dict[str, str]]]:
        return {
            "captured": razorpay.webhook("payment.captured", payment=payment),
            "order.paid": razorpay.webhook("order.paid", payment=payment, order=at_order),
            "refund 1": razorpay.webhook("refund.processed", refund=first, payment=after_first),
            # An event naming only the refund: its payment is known by id alone.
            "refund 2": razorpay.webhook("refund.processed", refund=second),
        }

    def sending(webhook: tuple[bytes, dict[str, str]]) -> Step:
        return lambda: deliver(client, webhook)

    def verifying() -> Awaitable[httpx.Response]:
        return client.post("/v1/payments/verify", headers=headers, json=handed_over)

    sent, resent = webhooks(), webhooks()  # the refunds again, under new event ids
    resent["captured"], resent["order.paid"] = sent["captured"], sent["order.paid"]
    steps = {name: sending(webhook) for name, webhook in sent.items()}
    again = {name: sending(webhook) for name, webhook in resent.items()}
    steps["verify"] = again["verify"] = verifying
    return Purchase(opened["id"], (first["id"], second["id"]), steps, again)


async def _ending(
    client: httpx.AsyncClient, headers: dict[str, str], purchase: Purchase
) -> dict[str, Any]:
    """What the customer sees of the purchase: its state and its ledger lines."""
    [payment] = [
        p
        for p in (await client.get("/v1/payments", headers=headers, params={"limit": 5})).json()[
            "items"
        ]
        if p["id"] == purchase.id
    ]
    ledger = (await client.get("/v1/credits", headers=headers, params={"limit": 20})).json()
    lines = sorted(
        (entry["kind"], entry["amount"], entry["note"])
        for entry in ledger["ledger"]["items"]
        if entry["payment_id"] == purchase.id
    )
    fields = ("status", "amount_refunded", "credits_reversed", "credits_shortfall")
    return {**{field: payment[field] for field in fields}, "lines": lines}


def _natural(purchase: Purchase, order_id: str) -> dict[str, Any]:
    first, second = purchase.refunds
    return {
        "status": "partially_refunded",
        "amount_refunded": FIRST_REFUND + SECOND_REFUND,
        "credits_reversed": 5,
        "credits_shortfall": 0,
        "lines": sorted(
            [
                ("purchase", 10, f"pack small ({order_id})"),
                ("purchase_reversal", -3, f"refund {first} of {order_id}"),
                ("purchase_reversal", -2, f"refund {second} of {order_id}"),
            ]
        ),
    }


async def _order_id(client: httpx.AsyncClient, headers: dict[str, str], payment_id: str) -> str:
    items = (await client.get("/v1/payments", headers=headers, params={"limit": 5})).json()
    [found] = [p["order_id"] for p in items["items"] if p["id"] == payment_id]
    return str(found)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # one at a time: no race here
async def test_every_order_of_capture_refunds_and_verification_ends_the_same(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "any-order@example.com")
    names = ("captured", "order.paid", "refund 1", "refund 2", "verify")
    balance = SIGNUP
    for arrivals in itertools.permutations(names):
        purchase = await _purchase(client, headers, razorpay)
        for name in arrivals:
            answer = await purchase.steps[name]()
            assert answer.status_code == 200, (arrivals, name, answer.text)
        expected = _natural(purchase, await _order_id(client, headers, purchase.id))
        assert await _ending(client, headers, purchase) == expected, arrivals
        for name in reversed(arrivals):  # everything again, backwards
            answer = await purchase.again[name]()
            assert answer.status_code == 200, (arrivals, name, answer.text)
        assert await _ending(client, headers, purchase) == expected, arrivals
        balance += 10 - 5
        assert await balance_of(client, headers) == balance, arrivals
    await assert_books_balance(client, headers, SIGNUP)


async def test_all_of_them_at_once_end_the_same(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    """Two deliveries at once (on PostgreSQL, truly concurrent transactions): the refunds that
    race the grant are taken back once each, by whichever transaction comes second."""
    headers = await sign_up(client, "all-at-once@example.com")
    for _ in range(8):
        purchase = await _purchase(client, headers, razorpay)
        arrivals = [*purchase.steps.values(), *purchase.again.values()] * 2
        answers = await asyncio.gather(*(step() for step in arrivals))
        assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
        expected = _natural(purchase, await _order_id(client, headers, purchase.id))
        assert await _ending(client, headers, purchase) == expected
    assert await balance_of(client, headers) == SIGNUP + 8 * 5
    await assert_books_balance(client, headers, SIGNUP)


async def test_a_refund_before_its_capture_is_taken_back(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "refund-first@example.com")
    opened = await order(client, headers, pack_id="small")
    payment, _ = checkout(razorpay, opened["order_id"])
    refund = razorpay.refund(payment["id"])
    refunded = razorpay.webhook(
        "refund.processed", refund=refund, payment=razorpay.payment(payment["id"])
    )

    early = await deliver(client, refunded)
    assert (early.status_code, early.json()["status"]) == (200, "processed")
    assert await balance_of(client, headers) == SIGNUP
    captured = await deliver(client, razorpay.webhook("payment.captured", payment=payment))
    assert captured.json()["status"] == "processed"

    assert await balance_of(client, headers) == SIGNUP
    [recorded] = (await client.get("/v1/payments", headers=headers)).json()["items"]
    assert (recorded["status"], recorded["credits_reversed"]) == ("refunded", 10)
    assert recorded["amount_refunded"] == 1000
    assert (await deliver(client, refunded)).json()["status"] == "duplicate"
    await assert_books_balance(client, headers, SIGNUP)


async def test_a_payment_refunded_in_full_before_its_verification_is_granted_and_taken_back(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    """Razorpay calls a fully refunded payment `refunded`, no longer `captured`: it was captured,
    so the verification grants the pack, and the refund recorded before takes it back."""
    headers = await sign_up(client, "verify-late@example.com")
    opened = await order(client, headers, pack_id="small")
    payment, handed_over = checkout(razorpay, opened["order_id"])
    refund = razorpay.refund(payment["id"])
    await deliver(client, razorpay.webhook("refund.processed", refund=refund))
    assert razorpay.payment(payment["id"])["status"] == "refunded"

    verified = await client.post("/v1/payments/verify", headers=headers, json=handed_over)

    assert verified.status_code == 200, verified.text
    assert (verified.json()["status"], verified.json()["credits_reversed"]) == ("refunded", 10)
    assert await balance_of(client, headers) == SIGNUP
    await assert_books_balance(client, headers, SIGNUP)


async def test_a_refund_sent_again_in_another_event_is_taken_back_once(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "resent@example.com")
    opened = await order(client, headers, pack_id="small")
    payment, handed_over = checkout(razorpay, opened["order_id"])
    await client.post("/v1/payments/verify", headers=headers, json=handed_over)
    refund = razorpay.refund(payment["id"], amount=500)

    answers = [
        await deliver(client, razorpay.webhook("refund.processed", refund=refund)) for _ in range(3)
    ]

    assert [a.json()["status"] for a in answers] == ["processed", "duplicate", "duplicate"]
    assert await balance_of(client, headers) == SIGNUP + 5
    await assert_books_balance(client, headers, SIGNUP)


async def test_a_refund_of_a_payment_this_server_never_saw_changes_no_balance(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    """Another shop on the same Razorpay account, say: the refund is recorded (in case its
    payment turns up) and acknowledged, and nobody's credits move."""
    headers = await sign_up(client, "bystander@example.com")
    foreign = razorpay.create_order({"amount": 1000, "currency": "INR"})
    payment = razorpay.pay(foreign["id"])
    refund = razorpay.refund(payment["id"])
    at_razorpay = razorpay.payment(payment["id"])

    answer = await deliver(
        client, razorpay.webhook("refund.processed", refund=refund, payment=at_razorpay)
    )

    assert (answer.status_code, answer.json()["status"]) == (200, "processed")
    assert await balance_of(client, headers) == SIGNUP
    await assert_books_balance(client, headers, SIGNUP)


async def test_a_refund_of_a_second_payment_of_a_paid_order_takes_nothing(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    """The customer paid the order twice; the second payment, which granted nothing, is
    refunded (before or after its capture arrives): the pack the first one bought stays."""
    headers = await sign_up(client, "paid-twice@example.com")
    opened = await order(client, headers, pack_id="small")
    first, handed_over = checkout(razorpay, opened["order_id"])
    second = razorpay.pay(opened["order_id"], amount=1000)
    refund = razorpay.refund(second["id"])

    await deliver(client, razorpay.webhook("refund.processed", refund=refund, payment=second))
    await client.post("/v1/payments/verify", headers=headers, json=handed_over)
    await deliver(client, razorpay.webhook("payment.captured", payment=second))

    assert await balance_of(client, headers) == SIGNUP + 10
    [recorded] = (await client.get("/v1/payments", headers=headers)).json()["items"]
    assert (recorded["status"], recorded["payment_id"]) == ("paid", first["id"])
    await assert_books_balance(client, headers, SIGNUP)
