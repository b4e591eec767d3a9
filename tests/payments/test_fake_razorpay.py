"""The fake Razorpay behaves like Razorpay for the official `razorpay` client: orders and payments
round-trip through `razorpay.Client`, its errors raise the client's own exception classes, and its
checkout and webhook signatures pass the client's own verification utilities."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import razorpay
import requests
from razorpay.errors import BadRequestError, ServerError, SignatureVerificationError

from tests.harness.razorpay import FakeRazorpay


@pytest.fixture
def fake() -> Iterator[FakeRazorpay]:
    with FakeRazorpay() as server:
        yield server


@pytest.fixture
def client(fake: FakeRazorpay) -> Any:
    return razorpay.Client(auth=(fake.key_id, fake.key_secret), base_url=fake.base_url)


def test_an_order_is_created_and_fetched_through_the_official_client(
    fake: FakeRazorpay, client: Any
) -> None:
    order = client.order.create(
        {"amount": 49900, "currency": "INR", "receipt": "pack-1", "notes": {"user": "42"}}
    )

    assert re.fullmatch(r"order_[A-Za-z0-9]{14}", order["id"])
    assert order | {"id": "", "created_at": 0} == {
        "id": "",
        "entity": "order",
        "amount": 49900,
        "amount_paid": 0,
        "amount_due": 49900,
        "currency": "INR",
        "receipt": "pack-1",
        "offer_id": None,
        "status": "created",
        "attempts": 0,
        "notes": {"user": "42"},
        "created_at": 0,
    }
    assert client.order.fetch(order["id"]) == order
    created = fake.requests[0]
    assert (created.method, created.path, created.json["amount"]) == ("POST", "/v1/orders", 49900)
    basic = base64.b64encode(f"{fake.key_id}:{fake.key_secret}".encode()).decode()
    assert created.headers["authorization"] == f"Basic {basic}"


def test_a_wrong_or_missing_key_is_a_bad_request_error(fake: FakeRazorpay) -> None:
    for wrong in [fake.client(key_secret="wrong-secret"), razorpay.Client(base_url=fake.base_url)]:
        with pytest.raises(BadRequestError, match="Authentication failed"):
            wrong.order.create({"amount": 49900, "currency": "INR"})
    assert "authorization" not in fake.requests[-1].headers


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"amount": 99, "currency": "INR"}, "atleast INR 1.00"),
        ({"amount": "49900", "currency": "INR"}, "must be an integer"),
        ({"currency": "INR"}, "amount field is required"),
        ({"amount": 49900, "currency": "RUPEE"}, "3 characters"),
        ({"amount": 49900, "currency": "INR", "receipt": "r" * 41}, "40 characters"),
        ({"amount": 49900, "currency": "INR", "customer": "x"}, "should not be sent"),
    ],
)
def test_invalid_orders_and_unknown_ids_are_bad_request_errors(
    client: Any, data: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadRequestError, match=message):
        client.order.create(data)
    with pytest.raises(BadRequestError, match="does not exist"):
        client.order.fetch("order_AAAAAAAAAAAAAA")


def test_payments_update_their_order_as_razorpay_does(fake: FakeRazorpay, client: Any) -> None:
    order = client.order.create({"amount": 49900, "currency": "INR"})

    failed = fake.fail(order["id"], description="Your payment was declined")
    short = fake.pay(order["id"], amount=100)
    assert client.order.fetch(order["id"])["status"] == "attempted"
    paid = fake.pay(order["id"])

    assert client.payment.fetch(failed["id"])["error_description"] == "Your payment was declined"
    assert (failed["status"], failed["captured"], failed["error_code"]) == (
        "failed",
        False,
        "BAD_REQUEST_ERROR",
    )
    fetched = client.payment.fetch(paid["id"])
    assert re.fullmatch(r"pay_[A-Za-z0-9]{14}", fetched["id"])
    assert fetched == paid
    assert fetched["amount"] == 49800  # the amount due after the short payment
    assert (fetched["status"], fetched["captured"], fetched["order_id"]) == (
        "captured",
        True,
        order["id"],
    )
    assert short["amount"] == 100
    fetched_order = client.order.fetch(order["id"])
    assert (fetched_order["status"], fetched_order["attempts"]) == ("paid", 3)
    assert (fetched_order["amount_paid"], fetched_order["amount_due"]) == (49900, 0)
    with pytest.raises(BadRequestError, match="does not exist"):
        client.payment.fetch("pay_AAAAAAAAAAAAAA")


def test_checkout_signatures_verify_with_the_official_utility(
    fake: FakeRazorpay, client: Any
) -> None:
    order = client.order.create({"amount": 49900, "currency": "INR"})
    payment = fake.pay(order["id"])
    fields = {"razorpay_order_id": order["id"], "razorpay_payment_id": payment["id"]}

    signature = fake.checkout_signature(order["id"], payment["id"])
    assert client.utility.verify_payment_signature(fields | {"razorpay_signature": signature})
    with pytest.raises(SignatureVerificationError):
        client.utility.verify_payment_signature(fields | {"razorpay_signature": "0" * 64})


def test_webhooks_verify_with_the_official_utility(fake: FakeRazorpay, client: Any) -> None:
    order = client.order.create({"amount": 49900, "currency": "INR"})
    payment = fake.pay(order["id"])

    body, headers = fake.webhook("order.paid", payment=payment, order=fake.order(order["id"]))

    assert client.utility.verify_webhook_signature(
        body.decode(), headers["X-Razorpay-Signature"], fake.webhook_secret
    )
    with pytest.raises(SignatureVerificationError):
        client.utility.verify_webhook_signature(
            body.decode().replace("49900", "99900"),
            headers["X-Razorpay-Signature"],
            fake.webhook_secret,
        )
    event = json.loads(body)
    assert (event["entity"], event["event"], event["contains"]) == (
        "event",
        "order.paid",
        ["payment", "order"],
    )
    assert event["payload"]["order"]["entity"]["status"] == "paid"
    assert event["payload"]["payment"]["entity"]["id"] == payment["id"]
    assert re.fullmatch(r"evt_[A-Za-z0-9]{14}", headers["x-razorpay-event-id"])
    _, redelivered = fake.webhook("payment.captured", payment=payment, event_id="evt_again")
    assert redelivered["x-razorpay-event-id"] == "evt_again"


def test_refunds_update_the_payment(fake: FakeRazorpay, client: Any) -> None:
    order = client.order.create({"amount": 49900, "currency": "INR"})
    payment = fake.pay(order["id"])

    partial = fake.refund(payment["id"], amount=9900)
    assert re.fullmatch(r"rfnd_[A-Za-z0-9]{14}", partial["id"])
    assert (partial["entity"], partial["status"], partial["payment_id"]) == (
        "refund",
        "processed",
        payment["id"],
    )
    after_partial = client.payment.fetch(payment["id"])
    assert (after_partial["status"], after_partial["refund_status"]) == ("captured", "partial")

    rest = client.payment.refund(payment["id"], 40000)  # POST /v1/payments/{id}/refund
    assert rest["amount"] == 40000
    after_full = client.payment.fetch(payment["id"])
    assert (after_full["status"], after_full["refund_status"]) == ("refunded", "full")
    assert after_full["amount_refunded"] == 49900
    body, _ = fake.webhook("refund.processed", refund=rest, payment=after_full)
    assert json.loads(body)["contains"] == ["refund", "payment"]
    with pytest.raises(ValueError, match="fully refunded"):
        fake.refund(payment["id"])


def test_outages_raise_the_clients_errors(fake: FakeRazorpay, client: Any) -> None:
    order = client.order.create({"amount": 49900, "currency": "INR"})

    fake.fail_next(500)
    with pytest.raises(ServerError):
        client.order.fetch(order["id"])
    assert client.order.fetch(order["id"])["id"] == order["id"]

    fake.fail_next(502, raw_body=b"<html>502 Bad Gateway</html>")
    with pytest.raises(requests.exceptions.JSONDecodeError):
        client.order.fetch(order["id"])

    fake.delay_seconds = 0.3
    with pytest.raises(requests.exceptions.Timeout):
        client.order.fetch(order["id"], timeout=0.05)
