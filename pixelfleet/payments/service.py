"""The rules of buying credits: a payment grants its pack's credits exactly once, whether the
checkout's verification, the webhook, or both arrive, in any order, any number of times; a
refund takes them back (never below zero, the shortfall recorded), whether it arrives after the
capture or before it: Razorpay does not order its webhooks, so each refund is recorded by its id
when it arrives and applied when its payment is granted, in the granting transaction.

A service: each function takes the caller's session and never commits. `payments.checkout`
owns the transactions around the calls to Razorpay; the API's request session, the webhook's."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.client_text import problem_in_json
from pixelfleet.credits import service as credits
from pixelfleet.db import utcnow
from pixelfleet.errors import FieldError, InvalidInput
from pixelfleet.models import Payment, PaymentEvent, PaymentRefund, User
from pixelfleet.pagination import decode_time_cursor, encode_time_cursor, page_of
from pixelfleet.payments.errors import (
    InvalidPaymentSignature,
    InvalidWebhook,
    OrderKeyReused,
    PaymentMismatch,
    PaymentNotCaptured,
    PaymentNotFound,
    PaymentsNotConfigured,
)
from pixelfleet.payments.gateway import PaymentGateway, ProviderPayment
from pixelfleet.payments.repository import (
    CREATED,
    FAILED,
    PAID,
    PARTIALLY_REFUNDED,
    REFUNDED,
    SETTLED,
    PaymentRepository,
)
from pixelfleet.payments.schemas import (
    OrderOut,
    PackList,
    PackOut,
    PaymentOut,
    PaymentPage,
    VerifyRequest,
    WebhookAck,
)
from pixelfleet.payments.signatures import checkout_signature_valid, webhook_signature_valid
from pixelfleet.payments.state_counts import count_state_entered
from pixelfleet.settings import CreditPack, Settings

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY_LENGTH = 255
NOT_CONFIGURED = (
    "Payments are not configured on this server: set PIXELFLEET_RAZORPAY_KEY_ID and "
    "PIXELFLEET_RAZORPAY_KEY_SECRET (and PIXELFLEET_RAZORPAY_WEBHOOK_SECRET for webhooks)."
)


def configured(gateway: PaymentGateway | None) -> PaymentGateway:
    """The payment provider, or PaymentsNotConfigured while its keys are not set."""
    if gateway is None:
        raise PaymentsNotConfigured(NOT_CONFIGURED)
    return gateway


def key_secret(settings: Settings) -> str:
    if settings.razorpay_key_secret is None or not settings.razorpay_key_id:
        raise PaymentsNotConfigured(NOT_CONFIGURED)
    return settings.razorpay_key_secret.get_secret_value()


def list_packs(settings: Settings, gateway: PaymentGateway | None) -> PackList:
    configured(gateway)
    return PackList(items=[PackOut(**pack.model_dump()) for pack in settings.credit_packs])


def pack_of(settings: Settings, pack_id: str) -> CreditPack:
    for pack in settings.credit_packs:
        if pack.id == pack_id:
            return pack
    known = ", ".join(pack.id for pack in settings.credit_packs)
    raise InvalidInput(
        f"There is no pack {pack_id!r}; the packs are: {known}.",
        errors=[FieldError("pack_id", f"must be one of {known}")],
    )


def order_out(payment: Payment, key_id: str) -> OrderOut:
    return OrderOut(
        id=payment.id,
        order_id=payment.order_id,
        amount=payment.amount,
        currency=payment.currency,
        key_id=key_id,
        pack_id=payment.pack_id,
        credits=payment.credits,
        status=payment.status,
    )


def replayed(existing: Payment, pack_id: str) -> Payment:
    """The order an Idempotency-Key opened before, if it was for the same pack."""
    if existing.pack_id != pack_id:
        raise OrderKeyReused("This Idempotency-Key was already used to buy another pack.")
    return existing


def check_order_key(idempotency_key: str | None) -> None:
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidInput(
            "The Idempotency-Key header must be 1 to 255 characters.",
            errors=[FieldError("Idempotency-Key", "must be 1 to 255 characters")],
        )


async def order_for_key(session: AsyncSession, user: User, idempotency_key: str) -> Payment | None:
    """The order this user opened with `idempotency_key`, if any."""
    return await PaymentRepository.from_session(session).by_idempotency_key(
        user.id, idempotency_key
    )


def new_order(
    payment_id: uuid.UUID, user: User, pack: CreditPack, order_id: str, key: str | None
) -> Payment:
    """The payment row of an order Razorpay opened for `pack`."""
    return Payment(
        id=payment_id,
        user_id=user.id,
        pack_id=pack.id,
        credits=pack.credits,
        amount=pack.amount,
        currency=pack.currency,
        status=CREATED,
        order_id=order_id,
        idempotency_key=key,
        amount_refunded=0,
        credits_reversed=0,
        credits_shortfall=0,
    )


async def record_order(session: AsyncSession, payment: Payment) -> None:
    """Stores an opened order; IntegrityError if its Idempotency-Key was stored first."""
    await PaymentRepository.from_session(session).add(payment)
    count_state_entered(session, CREATED)


def mismatch(payment: Payment, provider: ProviderPayment | dict[str, Any]) -> str | None:
    """Why the provider's payment does not pay this order, or None when it does."""
    order_id: object
    amount: object
    currency: object
    if isinstance(provider, ProviderPayment):
        order_id, amount, currency = provider.order_id, provider.amount, provider.currency
    else:
        order_id, amount, currency = (
            provider.get("order_id"),
            provider.get("amount"),
            provider.get("currency"),
        )
    if order_id != payment.order_id:
        return f"the payment belongs to order {order_id}, not {payment.order_id}"
    if amount != payment.amount or currency != payment.currency:
        return f"the payment is {amount} {currency}, the order {payment.amount} {payment.currency}"
    return None


async def _settle_paid(session: AsyncSession, payment: Payment, provider_payment_id: str) -> bool:
    """Marks the payment paid and grants its credits, unless it already was (then nothing); the
    refunds of that Razorpay payment recorded before are taken back in the same transaction.
    The caller holds `lock_provider_payment` and the payment's row."""
    repo = PaymentRepository.from_session(session)
    if not await repo.mark_paid(payment, provider_payment_id, utcnow()):
        return False
    count_state_entered(session, PAID)
    granted = await credits.grant_for_payment(
        session,
        payment.user_id,
        payment.id,
        payment.credits,
        reference=f"razorpay:{provider_payment_id}",
        note=f"pack {payment.pack_id} ({payment.order_id})",
    )
    assert granted, "a payment became paid twice"
    log.info("payment %s paid: %d credits granted", payment.id, payment.credits)
    paid = await repo.get(payment.id)
    assert paid is not None
    await _take_back_recorded_refunds(session, paid)
    return True


def check_checkout_signature(settings: Settings, request: VerifyRequest) -> None:
    """Refuses a Checkout answer whose signature does not sign its order and payment."""
    if not checkout_signature_valid(
        key_secret(settings),
        request.razorpay_order_id,
        request.razorpay_payment_id,
        request.razorpay_signature,
    ):
        raise InvalidPaymentSignature(
            "The payment signature does not match this order and payment."
        )


async def order_of_user(session: AsyncSession, user: User, order_id: str) -> Payment:
    payment = await PaymentRepository.from_session(session).by_order_id(order_id)
    if payment is None or payment.user_id != user.id:
        raise PaymentNotFound(f"No order {order_id} exists for this account.")
    return payment


def check_captured(payment: Payment, provider: ProviderPayment) -> None:
    """Refuses a provider's payment that does not pay `payment`'s order, or is not captured."""
    if (problem := mismatch(payment, provider)) is not None:
        log.warning("payment %s: verification refused: %s", payment.id, problem)
        raise PaymentMismatch(f"This payment does not pay order {payment.order_id}: {problem}.")
    # A refunded payment was captured first: the refunds, recorded or still to come, take back
    # what this grants.
    if provider.status not in ("captured", "refunded"):
        raise PaymentNotCaptured(
            f"Payment {provider.id} is {provider.status}, not captured yet; the credits are "
            "granted when Razorpay captures it."
        )


async def grant_verified(session: AsyncSession, order_id: str, provider_payment_id: str) -> None:
    """Grants a verified payment's credits, unless the webhook (or another verification)
    already did."""
    repo = PaymentRepository.from_session(session)
    await repo.lock_provider_payment(provider_payment_id)
    locked = await repo.by_order_id(order_id, lock=True)
    assert locked is not None
    await _settle_paid(session, locked, provider_payment_id)


async def handle_webhook(
    session: AsyncSession,
    settings: Settings,
    body: bytes,
    signature: str | None,
    event_id: str | None,
) -> WebhookAck:
    """Verifies and stores a Razorpay event once (by its id), and applies it in the same
    transaction: a redelivery, or the same event racing itself, changes nothing."""
    secret = settings.razorpay_webhook_secret
    if secret is None or not secret.get_secret_value():
        raise PaymentsNotConfigured(
            "Payment webhooks are not configured on this server: set "
            "PIXELFLEET_RAZORPAY_WEBHOOK_SECRET."
        )
    if not signature or not webhook_signature_valid(secret.get_secret_value(), body, signature):
        raise InvalidWebhook("The X-Razorpay-Signature header does not sign this body.")
    if not event_id or len(event_id) > 64:
        raise InvalidWebhook("The x-razorpay-event-id header is missing or too long.")
    try:
        document = json.loads(body)
    except ValueError:
        raise InvalidWebhook("The webhook body is not JSON.") from None
    if not isinstance(document, dict) or not isinstance(document.get("event"), str):
        raise InvalidWebhook("The webhook body names no event.")
    unsafe = problem_in_json(document, "")
    if unsafe is not None:  # the event is stored as it came: its text must be storable
        raise InvalidWebhook(f"The webhook body's field {unsafe.field} {unsafe.message}.")
    event = str(document["event"])[:64]

    repo = PaymentRepository.from_session(session)
    payment_entity = repo.entity(document, "payment")
    order_entity = repo.entity(document, "order")
    order_id = (payment_entity or {}).get("order_id") or (order_entity or {}).get("id")
    stored = await repo.add_event(
        PaymentEvent(
            id=event_id,
            event=event,
            order_id=order_id if isinstance(order_id, str) else None,
            payload=document,
        )
    )
    if not stored:
        return WebhookAck(status="duplicate", detail=f"Event {event_id} was already received.")
    ack = await _apply_event(session, event, document)
    await repo.set_event_outcome(event_id, f"{ack.status}: {ack.detail}")
    return ack


async def _apply_event(session: AsyncSession, event: str, document: dict[str, Any]) -> WebhookAck:
    repo = PaymentRepository.from_session(session)
    payment_entity = repo.entity(document, "payment")
    order_entity = repo.entity(document, "order")
    if event in ("payment.captured", "order.paid"):
        if payment_entity is None or not isinstance(payment_entity.get("id"), str):
            return WebhookAck(status="ignored", detail=f"{event} without a payment entity.")
        order_id = payment_entity.get("order_id") or (order_entity or {}).get("id")
        if order_entity is not None and payment_entity.get("order_id") is None:
            payment_entity = {**payment_entity, "order_id": order_id}
        return await _captured(session, str(order_id), payment_entity)
    if event == "payment.failed":
        if payment_entity is None:
            return WebhookAck(status="ignored", detail="payment.failed without a payment entity.")
        return await _failed(session, payment_entity)
    if event == "refund.processed":
        refund = repo.entity(document, "refund")
        if refund is None:
            return WebhookAck(status="ignored", detail="refund.processed without a refund entity.")
        return await _refunded(session, refund, payment_entity)
    return WebhookAck(status="ignored", detail=f"Event {event} needs nothing from PixelFleet.")


async def _captured(session: AsyncSession, order_id: str, entity: dict[str, Any]) -> WebhookAck:
    repo = PaymentRepository.from_session(session)
    await repo.lock_provider_payment(str(entity["id"]))
    payment = await repo.by_order_id(order_id, lock=True)
    if payment is None:
        return WebhookAck(status="ignored", detail=f"No order {order_id} here.")
    if (problem := mismatch(payment, entity)) is not None:
        log.error("payment %s: captured payment refused: %s", payment.id, problem)
        await repo.note_problem(payment, f"refused {entity.get('id')}: {problem}", utcnow())
        return WebhookAck(status="ignored", detail=f"Not granted: {problem}.")
    if await _settle_paid(session, payment, str(entity["id"])):
        return WebhookAck(status="processed", detail=f"Granted {payment.credits} credits.")
    if payment.payment_id not in (None, entity["id"]):
        log.error(
            "order %s paid twice (%s, then %s): refund the second payment",
            order_id,
            payment.payment_id,
            entity["id"],
        )
        return WebhookAck(status="ignored", detail=f"Order already paid by {payment.payment_id}.")
    return WebhookAck(status="ignored", detail="Already granted.")


async def _failed(session: AsyncSession, entity: dict[str, Any]) -> WebhookAck:
    repo = PaymentRepository.from_session(session)
    order_id = entity.get("order_id")
    payment = await repo.by_order_id(str(order_id), lock=True) if order_id else None
    if payment is None:
        return WebhookAck(status="ignored", detail=f"No order {order_id} here.")
    reason = str(entity.get("error_description") or entity.get("error_code") or "payment failed")
    if await repo.mark_failed(payment, reason, utcnow()):
        if payment.status != FAILED:  # another failed attempt of a failed order is no transition
            count_state_entered(session, FAILED)
        return WebhookAck(status="processed", detail="Marked failed.")
    return WebhookAck(status="ignored", detail=f"The payment is already {payment.status}.")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


async def _refunded(
    session: AsyncSession, refund: dict[str, Any], entity: dict[str, Any] | None
) -> WebhookAck:
    """Records a processed refund once (by its id), whatever is known of its payment, then takes
    its credits back if that payment is granted; if not yet, the grant will."""
    repo = PaymentRepository.from_session(session)
    refund_id = _text(refund.get("id"))
    provider_id = _text(refund.get("payment_id")) or _text((entity or {}).get("id"))
    amount = refund.get("amount")
    if refund_id is None or provider_id is None:
        return WebhookAck(status="ignored", detail="A refund without its id or its payment's.")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        return WebhookAck(status="ignored", detail=f"Refund {refund_id} has no valid amount.")
    await repo.lock_provider_payment(provider_id)
    recorded = await repo.add_refund(
        PaymentRefund(
            id=refund_id,
            payment_id=provider_id,
            order_id=_text((entity or {}).get("order_id")),
            amount=amount,
            received_at=utcnow(),
        )
    )
    if not recorded:
        return WebhookAck(status="duplicate", detail=f"Refund {refund_id} was already received.")
    payment = await repo.by_provider_payment_id(provider_id, lock=True)
    if payment is None or payment.status not in SETTLED:
        return WebhookAck(
            status="processed",
            detail=f"Recorded refund {refund_id}: its credits are taken back when payment "
            f"{provider_id} is granted.",
        )
    taken, shortfall = await _take_back_recorded_refunds(session, payment)
    return WebhookAck(
        status="processed", detail=f"Took back {taken} credits (shortfall {shortfall})."
    )


async def _take_back_recorded_refunds(session: AsyncSession, payment: Payment) -> tuple[int, int]:
    """Applies the recorded refunds of a granted payment not applied yet, in the order they
    arrived: credits follow the money refunded so far, so partial refunds add up to the whole
    pack, never below a zero balance (the shortfall recorded). `payment` is locked and freshly
    read. Returns the credits taken and the shortfall."""
    repo = PaymentRepository.from_session(session)
    assert payment.payment_id is not None
    taken_total = shortfall_total = 0
    for refund in await repo.unapplied_refunds(payment.payment_id):
        now = utcnow()
        refunded = min(payment.amount_refunded + refund.amount, payment.amount)
        owed = payment.credits * refunded // payment.amount
        to_take = owed - payment.credits_reversed
        shortfall = 0
        if to_take > 0:
            taken = await credits.take_back_for_refund(
                session,
                payment.user_id,
                payment.id,
                to_take,
                reference=f"razorpay:{refund.id}",
                note=f"refund {refund.id} of {payment.order_id}",
            )
            if taken is None:  # its ledger line exists: applied before refunds were recorded
                await repo.mark_refund_applied(refund.id, now)
                continue
            shortfall = taken.shortfall
            taken_total += taken.taken
            shortfall_total += shortfall
            if shortfall:
                log.warning(
                    "payment %s: refund took %d credits, %d were already spent",
                    payment.id,
                    taken.taken,
                    shortfall,
                )
        status = REFUNDED if refunded >= payment.amount else PARTIALLY_REFUNDED
        moved = await repo.record_refund(
            payment,
            amount_refunded=refunded,
            credits_reversed=max(owed, payment.credits_reversed),
            shortfall=shortfall,
            status=status,
            now=now,
        )
        assert moved, "the payment's row is locked"
        await repo.mark_refund_applied(refund.id, now)
        if status != payment.status:  # a second partial refund enters no new state
            count_state_entered(session, status)
        fresh = await repo.get(payment.id)
        assert fresh is not None
        payment = fresh
    return taken_total, shortfall_total


async def list_payments(
    session: AsyncSession, user: User, *, cursor: str | None, limit: int
) -> PaymentPage:
    """The caller's payments, newest first; an admin sees everyone's."""
    after = decode_time_cursor(cursor) if cursor else None
    owner = None if user.role == "admin" else user.id
    rows = await PaymentRepository.from_session(session).page(owner, after, limit + 1)
    page = page_of(rows, limit, lambda p: encode_time_cursor(p.created_at, p.id))
    return PaymentPage(
        items=[PaymentOut.model_validate(p) for p in page.items], next_cursor=page.next_cursor
    )
