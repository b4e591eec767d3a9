"""Razorpay Checkout's two steps, opening an order and verifying its payment: units of work
that own their transactions, because each calls Razorpay between them, with no transaction open
(on SQLite one would hold the write lock for as long as the provider takes). The rules are the
service's (`payments.service`), which takes each transaction's session and never commits."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError

from pixelfleet.context import ProcessContext
from pixelfleet.db import unit_of_work
from pixelfleet.models import User
from pixelfleet.payments import service
from pixelfleet.payments.repository import SETTLED
from pixelfleet.payments.schemas import OrderOut, PaymentOut, VerifyRequest


async def create_order(
    ctx: ProcessContext, user: User, pack_id: str, idempotency_key: str | None
) -> tuple[OrderOut, bool]:
    """Opens a Razorpay order for a pack. The same key with the same pack returns the first
    order; the bool says whether this call created it."""
    gateway = service.configured(ctx.payments)
    pack = service.pack_of(ctx.settings, pack_id)
    service.check_order_key(idempotency_key)
    if idempotency_key is not None:
        async with ctx.read_sessions() as session:
            existing = await service.order_for_key(session, user, idempotency_key)
        if existing is not None:
            return service.order_out(service.replayed(existing, pack_id), gateway.key_id), False

    payment_id = uuid.uuid4()
    order = await gateway.create_order(
        pack.amount,
        pack.currency,
        receipt=str(payment_id),
        notes={"user_id": str(user.id), "pack_id": pack.id, "credits": str(pack.credits)},
    )
    payment = service.new_order(payment_id, user, pack, order.id, idempotency_key)
    try:
        async with unit_of_work(ctx) as session:
            await service.record_order(session, payment)
    except IntegrityError:
        if idempotency_key is None:
            raise
        # The same key won a race with this request: answer with its order (ours goes unused
        # and expires unpaid at Razorpay).
        async with ctx.read_sessions() as session:
            existing = await service.order_for_key(session, user, idempotency_key)
        assert existing is not None
        return service.order_out(service.replayed(existing, pack_id), gateway.key_id), False
    return service.order_out(payment, gateway.key_id), True


async def verify_checkout(ctx: ProcessContext, user: User, request: VerifyRequest) -> PaymentOut:
    """The browser's word that Checkout succeeded: checked (signature, owner, and the payment
    itself at Razorpay: captured, for this order, for its amount) before credits are granted."""
    service.check_checkout_signature(ctx.settings, request)
    gateway = service.configured(ctx.payments)
    order_id, provider_id = request.razorpay_order_id, request.razorpay_payment_id
    async with ctx.read_sessions() as session:
        payment = await service.order_of_user(session, user, order_id)
    if payment.status in SETTLED:
        return PaymentOut.model_validate(payment)  # already granted (by the webhook, say)

    provider = await gateway.fetch_payment(provider_id)
    service.check_captured(payment, provider)
    async with unit_of_work(ctx) as session:
        await service.grant_verified(session, order_id, provider_id)
    async with ctx.read_sessions() as session:
        settled = await service.order_of_user(session, user, order_id)
    return PaymentOut.model_validate(settled)
