"""`pixelfleet_payments_total{state}` counts each payment entering a state once, when the
transaction that moved it commits: however many times Razorpay repeats itself, whichever of the
checkout's verification and the webhooks gets there first, and never for a change rolled back."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client import REGISTRY

from pixelfleet.context import ProcessContext
from pixelfleet.credits import service as credits_service
from pixelfleet.payments.state_counts import count_state_entered
from tests.api_helpers import sign_up
from tests.harness.razorpay import FakeRazorpay
from tests.payments import conftest as payments_suite
from tests.payments.conftest import checkout, deliver, order

# The payment suite's fixtures: a fake Razorpay, and settings that point at it.
razorpay = payments_suite.razorpay
settings = payments_suite.settings

STATES = ("created", "paid", "failed", "partially_refunded", "refunded")


def counted() -> dict[str, float]:
    return {
        state: REGISTRY.get_sample_value("pixelfleet_payments_total", {"state": state}) or 0.0
        for state in STATES
    }


def counted_since(before: dict[str, float]) -> dict[str, float]:
    """What was counted since `before`, by state, leaving out the states that did not move."""
    now = counted()
    return {state: now[state] - before[state] for state in STATES if now[state] != before[state]}


async def test_an_order_created_is_counted_once_even_when_its_key_is_replayed(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "orders@example.com")
    before = counted()

    await order(client, headers, key="buy-1")
    await order(client, headers, key="buy-1")
    assert counted_since(before) == {"created": 1}

    await order(client, headers, pack_id="small")
    assert counted_since(before) == {"created": 2}


async def test_an_order_razorpay_could_not_open_is_not_counted(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "outage@example.com")
    before = counted()
    razorpay.fail_next(500)

    response = await client.post(
        "/v1/payments/orders", headers=headers, json={"pack_id": "starter"}
    )

    assert response.status_code == 503
    assert counted_since(before) == {}


@pytest.mark.both_backends
async def test_a_verified_payment_then_its_webhook_ten_times_is_paid_once(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "verify@example.com")
    opened = await order(client, headers)
    payment, handed_over = checkout(razorpay, opened["order_id"])
    before = counted()

    verified = await client.post("/v1/payments/verify", headers=headers, json=handed_over)
    assert verified.json()["status"] == "paid"
    assert counted_since(before) == {"paid": 1}

    webhook = razorpay.webhook("payment.captured", payment=payment)
    answers = await asyncio.gather(*(deliver(client, webhook) for _ in range(10)))
    assert sorted(a.json()["status"] for a in answers) == ["duplicate"] * 9 + ["ignored"]
    order_paid = razorpay.webhook(
        "order.paid", payment=payment, order=razorpay.order(opened["order_id"])
    )
    assert (await deliver(client, order_paid)).json()["status"] == "ignored"
    again = await client.post("/v1/payments/verify", headers=headers, json=handed_over)
    assert again.json()["status"] == "paid"

    assert counted_since(before) == {"paid": 1}


@pytest.mark.both_backends
async def test_verifications_racing_webhooks_count_the_payment_paid_once(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "race@example.com")
    opened = await order(client, headers)
    payment, handed_over = checkout(razorpay, opened["order_id"])
    events = [
        razorpay.webhook("payment.captured", payment=payment),
        razorpay.webhook("order.paid", payment=payment, order=razorpay.order(opened["order_id"])),
    ] * 3
    before = counted()

    await asyncio.gather(
        *(deliver(client, event) for event in events),
        *(client.post("/v1/payments/verify", headers=headers, json=handed_over) for _ in range(3)),
    )

    assert counted_since(before) == {"paid": 1}


async def test_a_failed_payment_then_a_successful_one_counts_failed_then_paid(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "declined@example.com")
    opened = await order(client, headers)
    before = counted()

    declined = razorpay.fail(opened["order_id"], description="Your card was declined")
    failure = razorpay.webhook("payment.failed", payment=declined)
    assert (await deliver(client, failure)).json()["status"] == "processed"
    assert (await deliver(client, failure)).json()["status"] == "duplicate"
    assert counted_since(before) == {"failed": 1}

    # A second declined card: the order was failed already, and stays so.
    declined_again = razorpay.fail(opened["order_id"], description="Declined again")
    await deliver(client, razorpay.webhook("payment.failed", payment=declined_again))
    assert counted_since(before) == {"failed": 1}

    _, handed_over = checkout(razorpay, opened["order_id"])
    verified = await client.post("/v1/payments/verify", headers=headers, json=handed_over)
    assert verified.json()["status"] == "paid"
    late_failure = await deliver(client, razorpay.webhook("payment.failed", payment=declined))
    assert late_failure.json()["status"] == "ignored"

    assert counted_since(before) == {"failed": 1, "paid": 1}


async def test_a_partial_then_a_full_refund_count_each_state_once(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "refund@example.com")
    opened = await order(client, headers)
    payment, handed_over = checkout(razorpay, opened["order_id"])
    await client.post("/v1/payments/verify", headers=headers, json=handed_over)
    before = counted()

    first = razorpay.refund(payment["id"], amount=10_000)
    webhook = razorpay.webhook(
        "refund.processed", refund=first, payment=razorpay.payment(payment["id"])
    )
    assert (await deliver(client, webhook)).json()["status"] == "processed"
    assert (await deliver(client, webhook)).json()["status"] == "duplicate"
    assert counted_since(before) == {"partially_refunded": 1}

    # Another partial refund moves the totals but enters no new state.
    second = razorpay.refund(payment["id"], amount=10_000)
    await deliver(
        client,
        razorpay.webhook(
            "refund.processed", refund=second, payment=razorpay.payment(payment["id"])
        ),
    )
    assert counted_since(before) == {"partially_refunded": 1}

    rest = razorpay.refund(payment["id"])
    rest_webhook = razorpay.webhook(
        "refund.processed", refund=rest, payment=razorpay.payment(payment["id"])
    )
    assert (await deliver(client, rest_webhook)).json()["status"] == "processed"
    # Razorpay sending the same refund again under a new event id changes nothing.
    resent = razorpay.webhook(
        "refund.processed", refund=rest, payment=razorpay.payment(payment["id"])
    )
    assert (await deliver(client, resent)).status_code == 200

    assert counted_since(before) == {"partially_refunded": 1, "refunded": 1}


async def test_a_payment_whose_transaction_is_rolled_back_is_not_counted_until_it_commits(
    client: httpx.AsyncClient, razorpay: FakeRazorpay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook marks the payment paid, then the grant breaks: the request is rolled back,
    nothing was paid, and nothing is counted. Razorpay's redelivery then pays it, once."""
    headers = await sign_up(client, "rollback@example.com")
    opened = await order(client, headers)
    payment, _ = checkout(razorpay, opened["order_id"])
    webhook = razorpay.webhook("payment.captured", payment=payment)
    before = counted()

    with monkeypatch.context() as patched:

        async def broken_grant(*args: object, **kwargs: object) -> bool:
            raise RuntimeError("the ledger is unavailable")

        patched.setattr(credits_service, "grant_for_payment", broken_grant)
        with pytest.raises(RuntimeError, match="ledger"):
            await deliver(client, webhook)
    assert counted_since(before) == {}

    assert (await deliver(client, webhook)).json()["status"] == "processed"
    assert counted_since(before) == {"paid": 1}


async def test_a_state_entered_inside_a_savepoint_rolled_back_is_not_counted(
    ctx: ProcessContext,
) -> None:
    """What a savepoint undid is forgotten; what its transaction kept is counted at the commit
    of the outermost transaction, not at the release of a savepoint."""
    before = counted()
    async with ctx.sessions.begin() as session:
        count_state_entered(session, "paid")
        undone = await session.begin_nested()
        count_state_entered(session, "failed")
        await undone.rollback()
        async with session.begin_nested():
            count_state_entered(session, "refunded")
        assert counted_since(before) == {}
    assert counted_since(before) == {"paid": 1, "refunded": 1}

    async with ctx.sessions() as session:
        await session.begin()
        count_state_entered(session, "created")
        await session.rollback()
        await session.begin()
        await session.commit()
    assert counted_since(before) == {"paid": 1, "refunded": 1}
