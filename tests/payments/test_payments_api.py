"""Buying credits: a payment grants its pack once, whatever arrives, in whatever order, however
often; forged, foreign and mismatched payments grant nothing; refunds take credits back."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import update

from pixelfleet.api.app import create_app
from pixelfleet.bootstrap import create_context
from pixelfleet.context import ProcessContext
from pixelfleet.models import User
from pixelfleet.settings import Settings
from tests.api_helpers import PROBLEM, balance_of, sign_up
from tests.harness.razorpay import FakeRazorpay
from tests.payments.conftest import (
    assert_books_balance,
    checkout,
    deliver,
    order,
    payments_of,
)

SIGNUP = 100


async def test_the_packs_on_sale_come_from_the_settings(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/payments/packs")
    assert response.status_code == 200
    assert response.json()["items"] == [
        {"id": "starter", "credits": 500, "amount": 49900, "currency": "INR"},
        {"id": "small", "credits": 10, "amount": 1000, "currency": "INR"},
    ]


async def test_an_order_is_opened_at_razorpay_with_what_checkout_needs(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "buyer@example.com")
    opened = await order(client, headers)

    assert opened["amount"] == 49900
    assert opened["currency"] == "INR"
    assert opened["key_id"] == razorpay.key_id
    assert (opened["pack_id"], opened["credits"], opened["status"]) == ("starter", 500, "created")
    at_razorpay = razorpay.order(opened["order_id"])
    assert (at_razorpay["amount"], at_razorpay["receipt"]) == (49900, opened["id"])
    assert (await payments_of(client, headers))[0]["status"] == "created"


async def test_an_order_repeated_with_its_key_is_the_same_order(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "twice@example.com")
    first = await order(client, headers, key="buy-1")
    again = await client.post(
        "/v1/payments/orders",
        headers={**headers, "Idempotency-Key": "buy-1"},
        json={"pack_id": "starter"},
    )
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["order_id"] == first["order_id"]
    assert len([r for r in razorpay.requests if r.method == "POST"]) == 1

    other_pack = await client.post(
        "/v1/payments/orders",
        headers={**headers, "Idempotency-Key": "buy-1"},
        json={"pack_id": "small"},
    )
    assert other_pack.status_code == 409
    assert other_pack.headers["content-type"] == PROBLEM


async def test_an_unknown_pack_is_refused_with_the_packs_that_exist(
    client: httpx.AsyncClient,
) -> None:
    headers = await sign_up(client, "unknown@example.com")
    response = await client.post("/v1/payments/orders", headers=headers, json={"pack_id": "gold"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "pack_id"
    assert "starter" in response.json()["detail"]


async def test_verification_then_the_webhook_grants_the_pack_once(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "verify-first@example.com")
    opened = await order(client, headers)
    payment, handed_over = checkout(razorpay, opened["order_id"])

    verified = await client.post("/v1/payments/verify", headers=headers, json=handed_over)
    assert verified.status_code == 200, verified.text
    assert verified.json()["status"] == "paid"
    assert verified.json()["payment_id"] == payment["id"]
    assert await balance_of(client, headers) == SIGNUP + 500

    captured = await deliver(client, razorpay.webhook("payment.captured", payment=payment))
    assert captured.status_code == 200
    assert captured.json()["status"] == "ignored"
    again = await client.post("/v1/payments/verify", headers=headers, json=handed_over)
    assert again.json()["status"] == "paid"

    assert await balance_of(client, headers) == SIGNUP + 500
    await assert_books_balance(client, headers, SIGNUP)


async def test_the_webhook_then_verification_grants_the_pack_once(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "webhook-first@example.com")
    opened = await order(client, headers)
    payment, handed_over = checkout(razorpay, opened["order_id"])

    captured = await deliver(client, razorpay.webhook("payment.captured", payment=payment))
    assert captured.json()["status"] == "processed"
    paid = await deliver(
        client,
        razorpay.webhook("order.paid", payment=payment, order=razorpay.order(opened["order_id"])),
    )
    assert paid.json()["status"] == "ignored"
    verified = await client.post("/v1/payments/verify", headers=headers, json=handed_over)
    assert verified.json()["status"] == "paid"

    assert await balance_of(client, headers) == SIGNUP + 500
    await assert_books_balance(client, headers, SIGNUP)


@pytest.mark.both_backends
async def test_the_same_webhook_ten_times_at_once_grants_the_pack_once(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "storm@example.com")
    opened = await order(client, headers)
    payment, _ = checkout(razorpay, opened["order_id"])
    webhook = razorpay.webhook("payment.captured", payment=payment)

    answers = await asyncio.gather(*(deliver(client, webhook) for _ in range(10)))

    assert [a.status_code for a in answers] == [200] * 10
    assert sorted(a.json()["status"] for a in answers) == ["duplicate"] * 9 + ["processed"]
    assert await balance_of(client, headers) == SIGNUP + 500
    await assert_books_balance(client, headers, SIGNUP)


@pytest.mark.both_backends
async def test_different_events_for_one_payment_racing_grant_the_pack_once(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "race@example.com")
    opened = await order(client, headers)
    payment, handed_over = checkout(razorpay, opened["order_id"])
    events = [
        razorpay.webhook("payment.captured", payment=payment),
        razorpay.webhook("order.paid", payment=payment, order=razorpay.order(opened["order_id"])),
    ] * 3

    await asyncio.gather(
        *(deliver(client, event) for event in events),
        *(client.post("/v1/payments/verify", headers=headers, json=handed_over) for _ in range(3)),
    )

    assert await balance_of(client, headers) == SIGNUP + 500
    await assert_books_balance(client, headers, SIGNUP)


async def test_a_forged_checkout_signature_grants_nothing(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "forger@example.com")
    opened = await order(client, headers)
    _, handed_over = checkout(razorpay, opened["order_id"])
    handed_over["razorpay_signature"] = "0" * 64

    response = await client.post("/v1/payments/verify", headers=headers, json=handed_over)

    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-payment-signature")
    assert await balance_of(client, headers) == SIGNUP
    await assert_books_balance(client, headers, SIGNUP)


async def test_a_webhook_with_a_forged_signature_is_refused_and_leaves_no_trace(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "webhook-forger@example.com")
    opened = await order(client, headers)
    payment, _ = checkout(razorpay, opened["order_id"])
    body, webhook_headers = razorpay.webhook("payment.captured", payment=payment)

    forged = await client.post(
        "/v1/payments/webhook",
        content=body,
        headers={**webhook_headers, "X-Razorpay-Signature": "f" * 64},
    )
    tampered = await client.post(
        "/v1/payments/webhook", content=body.replace(b"49900", b"99999"), headers=webhook_headers
    )
    unsigned = await client.post(
        "/v1/payments/webhook",
        content=body,
        headers={"x-razorpay-event-id": webhook_headers["x-razorpay-event-id"]},
    )

    for response in (forged, tampered, unsigned):
        assert response.status_code == 400
        assert response.headers["content-type"] == PROBLEM
    assert await balance_of(client, headers) == SIGNUP
    # Nothing was stored under the event's id: the genuine delivery is still processed.
    genuine = await deliver(client, (body, webhook_headers))
    assert genuine.json()["status"] == "processed"
    assert await balance_of(client, headers) == SIGNUP + 500


async def test_a_checkout_signature_that_is_not_ascii_is_refused_as_forged(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "unicode-forger@example.com")
    opened = await order(client, headers)
    _, handed_over = checkout(razorpay, opened["order_id"])
    handed_over["razorpay_signature"] = "é" * 64

    response = await client.post("/v1/payments/verify", headers=headers, json=handed_over)

    assert response.status_code == 400, response.text
    assert response.json()["type"].endswith("/invalid-payment-signature")
    assert await balance_of(client, headers) == SIGNUP


async def test_a_webhook_signature_that_is_not_ascii_is_refused(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "unicode-webhook@example.com")
    opened = await order(client, headers)
    payment, _ = checkout(razorpay, opened["order_id"])
    body, webhook_headers = razorpay.webhook("payment.captured", payment=payment)

    forged = await client.post(
        "/v1/payments/webhook",
        content=body,
        headers={**webhook_headers, "X-Razorpay-Signature": "é".encode("latin-1") * 64},
    )

    assert forged.status_code == 400, forged.text
    assert forged.json()["type"].endswith("/invalid-webhook")
    assert await balance_of(client, headers) == SIGNUP


async def test_another_users_order_cannot_be_claimed(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    owner = await sign_up(client, "owner@example.com")
    thief = await sign_up(client, "thief@example.com")
    opened = await order(client, owner)
    _, handed_over = checkout(razorpay, opened["order_id"])

    response = await client.post("/v1/payments/verify", headers=thief, json=handed_over)

    assert response.status_code == 404
    assert await balance_of(client, thief) == SIGNUP
    assert await payments_of(client, thief) == []
    assert (await client.post("/v1/payments/verify", headers=owner, json=handed_over)).json()[
        "status"
    ] == "paid"
    await assert_books_balance(client, owner, SIGNUP)
    await assert_books_balance(client, thief, SIGNUP)


async def test_a_payment_for_another_amount_grants_nothing(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "short@example.com")
    opened = await order(client, headers)
    payment, handed_over = checkout(razorpay, opened["order_id"], amount=100)

    verified = await client.post("/v1/payments/verify", headers=headers, json=handed_over)
    captured = await deliver(client, razorpay.webhook("payment.captured", payment=payment))

    assert verified.status_code == 409
    assert verified.json()["type"].endswith("/payment-mismatch")
    assert captured.status_code == 200
    assert captured.json()["status"] == "ignored"
    [recorded] = await payments_of(client, headers)
    assert recorded["status"] == "created"
    assert "100 INR" in recorded["failure_reason"]
    assert await balance_of(client, headers) == SIGNUP
    await assert_books_balance(client, headers, SIGNUP)


async def test_a_failed_payment_grants_nothing_and_the_order_can_still_be_paid(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "declined@example.com")
    opened = await order(client, headers)
    declined = razorpay.fail(opened["order_id"], description="Your card was declined")

    failed = await deliver(client, razorpay.webhook("payment.failed", payment=declined))
    assert failed.json()["status"] == "processed"
    [recorded] = await payments_of(client, headers)
    assert (recorded["status"], recorded["failure_reason"]) == ("failed", "Your card was declined")
    assert await balance_of(client, headers) == SIGNUP

    _, handed_over = checkout(razorpay, opened["order_id"])  # the customer tries another card
    verified = await client.post("/v1/payments/verify", headers=headers, json=handed_over)
    assert verified.json()["status"] == "paid"
    # The failure's webhook arriving late (a new delivery) does not undo the payment.
    late_failure = await deliver(client, razorpay.webhook("payment.failed", payment=declined))
    assert late_failure.json()["status"] == "ignored"
    assert (await payments_of(client, headers))[0]["status"] == "paid"
    await assert_books_balance(client, headers, SIGNUP)


async def test_a_payment_not_yet_captured_is_granted_when_razorpay_captures_it(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "authorized@example.com")
    opened = await order(client, headers)
    payment, handed_over = checkout(razorpay, opened["order_id"], status="authorized")

    early = await client.post("/v1/payments/verify", headers=headers, json=handed_over)
    assert early.status_code == 409
    assert early.json()["type"].endswith("/payment-not-captured")

    captured = razorpay.capture(payment["id"])
    await deliver(client, razorpay.webhook("payment.captured", payment=captured))
    assert await balance_of(client, headers) == SIGNUP + 500
    await assert_books_balance(client, headers, SIGNUP)


async def test_a_refund_takes_the_credits_back(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "refund@example.com")
    opened = await order(client, headers)
    payment, handed_over = checkout(razorpay, opened["order_id"])
    await client.post("/v1/payments/verify", headers=headers, json=handed_over)

    half = razorpay.refund(payment["id"], amount=24950)
    webhook = razorpay.webhook(
        "refund.processed", refund=half, payment=razorpay.payment(payment["id"])
    )
    assert (await deliver(client, webhook)).json()["status"] == "processed"
    assert (await deliver(client, webhook)).json()["status"] == "duplicate"
    assert await balance_of(client, headers) == SIGNUP + 250
    rest = razorpay.refund(payment["id"])
    await deliver(
        client,
        razorpay.webhook("refund.processed", refund=rest, payment=razorpay.payment(payment["id"])),
    )

    [recorded] = await payments_of(client, headers)
    assert (recorded["status"], recorded["credits_reversed"]) == ("refunded", 500)
    assert recorded["credits_shortfall"] == 0
    assert await balance_of(client, headers) == SIGNUP
    await assert_books_balance(client, headers, SIGNUP)


async def test_events_payments_do_not_need_are_acknowledged(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "other-events@example.com")
    opened = await order(client, headers)
    payment = razorpay.pay(opened["order_id"], status="authorized")

    answer = await deliver(client, razorpay.webhook("payment.authorized", payment=payment))
    unknown_order = await deliver(
        client,
        razorpay.webhook("payment.captured", payment={**payment, "order_id": "order_nobodys00000"}),
    )

    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"
    assert unknown_order.json()["status"] == "ignored"
    assert await balance_of(client, headers) == SIGNUP


async def test_razorpay_down_when_ordering_is_a_clear_503_and_records_nothing(
    client: httpx.AsyncClient, razorpay: FakeRazorpay
) -> None:
    headers = await sign_up(client, "outage@example.com")
    razorpay.fail_next(500)

    response = await client.post(
        "/v1/payments/orders", headers=headers, json={"pack_id": "starter"}
    )

    assert response.status_code == 503
    assert response.json()["type"].endswith("/payment-provider-unavailable")
    assert await payments_of(client, headers) == []


async def test_people_see_their_own_payments_and_admins_see_everyones(
    client: httpx.AsyncClient, ctx: ProcessContext, razorpay: FakeRazorpay
) -> None:
    ada = await sign_up(client, "ada@example.com")
    bob = await sign_up(client, "bob@example.com")
    admin = await sign_up(client, "admin@example.com")
    async with ctx.sessions.begin() as session:
        await session.execute(
            update(User).where(User.email == "admin@example.com").values(role="admin")
        )
    await order(client, ada)
    await order(client, bob, pack_id="small")

    assert [p["pack_id"] for p in await payments_of(client, ada)] == ["starter"]
    assert [p["pack_id"] for p in await payments_of(client, bob)] == ["small"]
    assert sorted(p["pack_id"] for p in await payments_of(client, admin)) == ["small", "starter"]


async def test_without_keys_the_payment_endpoints_say_how_to_configure_them(
    settings: Settings,
) -> None:
    bare = settings.model_copy(
        update={
            "razorpay_key_id": None,
            "razorpay_key_secret": None,
            "razorpay_webhook_secret": None,
        }
    )
    ctx = create_context(bare)
    try:
        transport = httpx.ASGITransport(app=create_app(ctx=ctx))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://pixelfleet.test"
        ) as http:
            headers = await sign_up(http, "early@example.com")
            answers = [
                await http.get("/v1/payments/packs"),
                await http.post(
                    "/v1/payments/orders", headers=headers, json={"pack_id": "starter"}
                ),
                await http.post(
                    "/v1/payments/verify",
                    headers=headers,
                    json={
                        "razorpay_order_id": "order_x",
                        "razorpay_payment_id": "pay_x",
                        "razorpay_signature": "00",
                    },
                ),
                await http.post("/v1/payments/webhook", content=b"{}"),
            ]
            history = await http.get("/v1/payments", headers=headers)
    finally:
        await ctx.close()
    for answer in answers:
        assert answer.status_code == 503
        assert answer.headers["content-type"] == PROBLEM
        assert "PIXELFLEET_RAZORPAY" in answer.json()["detail"]
    assert history.status_code == 200
