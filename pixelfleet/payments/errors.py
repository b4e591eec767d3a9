from __future__ import annotations

from pixelfleet.errors import Conflict, NotFound, PixelFleetError


class PaymentsNotConfigured(PixelFleetError):
    status = 503
    slug = "payments-not-configured"
    title = "Payments are not configured"


class PaymentProviderUnavailable(PixelFleetError):
    status = 503
    slug = "payment-provider-unavailable"
    title = "The payment provider is unavailable"


class OrderKeyReused(Conflict):
    slug = "idempotency-key-reused"
    title = "Idempotency key already used for another request"


class PaymentNotFound(NotFound):
    slug = "payment-not-found"
    title = "Payment not found"


class InvalidPaymentSignature(PixelFleetError):
    status = 400
    slug = "invalid-payment-signature"
    title = "Invalid payment signature"


class InvalidWebhook(PixelFleetError):
    status = 400
    slug = "invalid-webhook"
    title = "Invalid webhook"


class PaymentNotCaptured(Conflict):
    slug = "payment-not-captured"
    title = "Payment not captured"


class PaymentMismatch(Conflict):
    slug = "payment-mismatch"
    title = "Payment does not match the order"
