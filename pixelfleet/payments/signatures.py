"""Razorpay's signatures: HMAC-SHA256, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def _matches(expected: str, signature: str) -> bool:
    """Compared as bytes: `compare_digest` raises on a str with non-ASCII characters, and a
    signature is whatever the sender put there."""
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


def checkout_signature_valid(
    key_secret: str, order_id: str, payment_id: str, signature: str
) -> bool:
    """The signature Checkout hands the browser: HMAC of `order_id|payment_id`, keyed with the
    API key secret."""
    expected = _hmac_hex(key_secret, f"{order_id}|{payment_id}".encode())
    return _matches(expected, signature)


def webhook_signature_valid(webhook_secret: str, body: bytes, signature: str) -> bool:
    """A webhook's `X-Razorpay-Signature`: HMAC of the raw body, keyed with the webhook secret."""
    expected = _hmac_hex(webhook_secret, body)
    return _matches(expected, signature)
