from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from pixelfleet.accounts.errors import EmailNotVerified
from pixelfleet.api.deps import (
    VERIFIED_SESSION_USER,
    ContextDep,
    CreditReader,
    ReadSessionDep,
    SessionDep,
    SessionUser,
)
from pixelfleet.api.problems import problem_responses
from pixelfleet.api.rate_limits import RATE_LIMITED, limit_payments
from pixelfleet.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from pixelfleet.payments import checkout
from pixelfleet.payments import service as payments
from pixelfleet.payments.errors import (
    InvalidPaymentSignature,
    InvalidWebhook,
    OrderKeyReused,
    PaymentMismatch,
    PaymentNotCaptured,
    PaymentNotFound,
    PaymentProviderUnavailable,
    PaymentsNotConfigured,
)
from pixelfleet.payments.schemas import (
    OrderOut,
    OrderRequest,
    PackList,
    PaymentOut,
    PaymentPage,
    VerifyRequest,
    WebhookAck,
)

router = APIRouter(prefix="/v1/payments", tags=["payments"])


# Without keys, or with Razorpay away, a payment route answers 503.
_UNAVAILABLE = (PaymentsNotConfigured, PaymentProviderUnavailable)


@router.get("/packs", response_model=PackList, responses=problem_responses(PaymentsNotConfigured))
async def list_packs(ctx: ContextDep) -> PackList:
    """The credit packs on sale (503 while payments are not configured)."""
    return payments.list_packs(ctx.settings, ctx.payments)


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderOut,
    dependencies=[VERIFIED_SESSION_USER, Depends(limit_payments)],
    responses={
        **RATE_LIMITED,
        200: {
            "model": OrderOut,
            "description": "The order this `Idempotency-Key` opened before "
            "(`Idempotent-Replayed: true`).",
        },
        **problem_responses(OrderKeyReused, EmailNotVerified, *_UNAVAILABLE),
    },
)
async def create_order(
    body: OrderRequest,
    response: Response,
    user: SessionUser,
    ctx: ContextDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="Repeat-safe order key.")
    ] = None,
) -> OrderOut:
    """Open a Razorpay order for a pack; pass the answer to Razorpay Checkout."""
    order, created = await checkout.create_order(ctx, user, body.pack_id, idempotency_key)
    if not created:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return order


@router.post(
    "/verify",
    response_model=PaymentOut,
    dependencies=[VERIFIED_SESSION_USER, Depends(limit_payments)],
    responses={
        **RATE_LIMITED,
        **problem_responses(
            InvalidPaymentSignature,
            PaymentNotFound,
            PaymentMismatch,
            PaymentNotCaptured,
            EmailNotVerified,
            *_UNAVAILABLE,
        ),
    },
)
async def verify_payment(body: VerifyRequest, user: SessionUser, ctx: ContextDep) -> PaymentOut:
    """Hand over what Checkout's success handler received; the pack's credits are granted once."""
    return await checkout.verify_checkout(ctx, user, body)


@router.post(
    "/webhook",
    response_model=WebhookAck,
    responses=problem_responses(InvalidWebhook, PaymentsNotConfigured),
    # The body is read raw (the signature covers its bytes), so FastAPI cannot list it.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "title": "Razorpay's event"},
                    "example": {
                        "entity": "event",
                        "account_id": "acc_BFQ7uQEaa7j2z7",
                        "event": "payment.captured",
                        "contains": ["payment"],
                        "payload": {
                            "payment": {
                                "entity": {
                                    "id": "pay_NkQ4Lm0aB7cD2e",
                                    "entity": "payment",
                                    "amount": 49900,
                                    "currency": "INR",
                                    "status": "captured",
                                    "order_id": "order_NkQ3dX8v2YbZ1p",
                                    "captured": True,
                                }
                            }
                        },
                        "created_at": 1767225600,
                    },
                }
            },
        }
    },
)
async def razorpay_webhook(
    request: Request,
    ctx: ContextDep,
    session: SessionDep,
    signature: Annotated[str | None, Header(alias="X-Razorpay-Signature")] = None,
    event_id: Annotated[str | None, Header(alias="x-razorpay-event-id")] = None,
) -> WebhookAck:
    """Razorpay's webhook (signed with the webhook secret over the raw body). Each event is
    applied once; redeliveries are acknowledged and ignored."""
    body = await request.body()
    return await payments.handle_webhook(session, ctx.settings, body, signature, event_id)


@router.get("", response_model=PaymentPage)
async def list_payments(
    user: CreditReader,
    session: ReadSessionDep,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> PaymentPage:
    """Your payments and their states, newest first (an admin sees everyone's)."""
    return await payments.list_payments(session, user, cursor=cursor, limit=limit)
