"""Payments on a running `pixelfleet up` configured through the environment, as an operator
would: checkout results and webhooks replayed, reordered and forged over real HTTP."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.api_helpers import PASSWORD
from tests.harness.embedded import pixelfleet_up
from tests.harness.razorpay import FakeRazorpay


def test_a_running_server_grants_a_pack_once_whatever_arrives(tmp_path: Path) -> None:
    with (
        FakeRazorpay() as razorpay,
        pixelfleet_up(
            tmp_path / "data",
            workers=1,
            env={
                "PIXELFLEET_RAZORPAY_KEY_ID": razorpay.key_id,
                "PIXELFLEET_RAZORPAY_KEY_SECRET": razorpay.key_secret,
                "PIXELFLEET_RAZORPAY_WEBHOOK_SECRET": razorpay.webhook_secret,
                "PIXELFLEET_RAZORPAY_BASE_URL": razorpay.base_url,
                "PIXELFLEET_CREDIT_PACKS": '[{"id": "tiny", "credits": 25, "amount": 2500}]',
            },
        ) as platform,
        httpx.Client(base_url=platform.base_url, timeout=30) as http,
    ):
        http.post("/v1/auth/register", json={"email": "live@example.com", "password": PASSWORD})
        token = http.post(
            "/v1/auth/token", data={"username": "live@example.com", "password": PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        before = http.get("/v1/credits", headers=headers).json()["balance"]
        assert http.get("/v1/payments/packs").json()["items"][0]["id"] == "tiny"

        opened = http.post("/v1/payments/orders", headers=headers, json={"pack_id": "tiny"}).json()
        payment = razorpay.pay(opened["order_id"])
        handed_over = {
            "razorpay_order_id": opened["order_id"],
            "razorpay_payment_id": payment["id"],
            "razorpay_signature": razorpay.checkout_signature(opened["order_id"], payment["id"]),
        }
        captured = razorpay.webhook("payment.captured", payment=payment)
        paid = razorpay.webhook(
            "order.paid", payment=payment, order=razorpay.order(opened["order_id"])
        )
        body, forged_headers = razorpay.webhook("payment.captured", payment=payment)
        forged_headers["X-Razorpay-Signature"] = razorpay.sign_webhook(b"something else")

        def send(step: int) -> int:
            if step % 4 == 0:
                return http.post(
                    "/v1/payments/verify", headers=headers, json=handed_over
                ).status_code
            if step % 4 == 1:
                return http.post(
                    "/v1/payments/webhook", content=captured[0], headers=captured[1]
                ).status_code
            if step % 4 == 2:
                return http.post(
                    "/v1/payments/webhook", content=paid[0], headers=paid[1]
                ).status_code
            return http.post(
                "/v1/payments/webhook", content=body, headers=forged_headers
            ).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(send, range(24)))

        assert sorted(set(statuses)) == [200, 400]
        assert statuses.count(400) == 6  # every forged one, and only those
        credits = http.get("/v1/credits", headers=headers, params={"limit": 100}).json()
        assert credits["balance"] == before + 25
        assert sum(entry["amount"] for entry in credits["ledger"]["items"]) == credits["balance"]
        [bought] = http.get("/v1/payments", headers=headers).json()["items"]
        assert (bought["status"], bought["payment_id"]) == ("paid", payment["id"])
