"""The Razorpay adapter of the payment provider port (the official client, run in threads: it
is synchronous)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import requests

from pixelfleet.payments.errors import PaymentNotFound, PaymentProviderUnavailable
from pixelfleet.payments.gateway import ProviderOrder, ProviderPayment

log = logging.getLogger(__name__)


class _TimeoutSession(requests.Session):
    """A requests session that never waits forever (the client sets no timeout)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        return super().request(*args, **kwargs)


class RazorpayGateway:
    def __init__(self, key_id: str, key_secret: str, base_url: str, timeout: float) -> None:
        import razorpay

        self.key_id = key_id
        self.client = razorpay.Client(
            session=_TimeoutSession(timeout), auth=(key_id, key_secret), base_url=base_url
        )

    async def _call(self, what: str, call: Any, *args: Any) -> dict[str, Any]:
        from razorpay.errors import BadRequestError, GatewayError, ServerError

        try:
            result: dict[str, Any] = await asyncio.to_thread(call, *args)
        except BadRequestError:
            raise
        except (requests.RequestException, ServerError, GatewayError, ValueError) as exc:
            # ValueError: an answer that is not JSON (a proxy's error page, say).
            log.warning("razorpay: %s failed: %s", what, exc)
            raise PaymentProviderUnavailable(
                "The payment provider did not answer; nothing was charged. Try again shortly."
            ) from exc
        return result

    async def create_order(
        self, amount: int, currency: str, receipt: str, notes: dict[str, str]
    ) -> ProviderOrder:
        from razorpay.errors import BadRequestError

        data = {"amount": amount, "currency": currency, "receipt": receipt, "notes": notes}
        try:
            order = await self._call("creating an order", self.client.order.create, data)
        except BadRequestError as exc:
            # Our request is wrong (keys, currency): the operator has to fix it, not the user.
            log.error("razorpay refused an order: %s", exc)
            raise PaymentProviderUnavailable(
                "The payment provider refused the order; the operator has been told."
            ) from exc
        return ProviderOrder(
            id=str(order["id"]), amount=int(order["amount"]), currency=order["currency"]
        )

    async def fetch_payment(self, payment_id: str) -> ProviderPayment:
        from razorpay.errors import BadRequestError

        try:
            payment = await self._call("fetching a payment", self.client.payment.fetch, payment_id)
        except BadRequestError as exc:
            raise PaymentNotFound(f"The payment provider knows no payment {payment_id}.") from exc
        return ProviderPayment(
            id=str(payment["id"]),
            order_id=payment.get("order_id"),
            amount=int(payment["amount"]),
            currency=str(payment["currency"]),
            status=str(payment["status"]),
        )
