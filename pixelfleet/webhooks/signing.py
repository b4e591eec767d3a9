"""Webhook signatures, Stripe-style: `PixelFleet-Signature: t=<unix seconds>,v1=<hex HMAC>`.

The HMAC-SHA256 covers `"<t>.<raw body>"`, so a receiver that checks the timestamp can refuse
replays of an old, validly signed request. Each user has a secret of their own, derived from the
server key, so nothing per user is stored and one user's secret tells nothing about another's.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid

from pixelfleet.settings import Settings

SIGNATURE_HEADER = "PixelFleet-Signature"
EVENT_HEADER = "PixelFleet-Event"
DELIVERY_HEADER = "PixelFleet-Delivery"
SIGNATURE_SCHEME = "t=<unix>,v1=<hex hmac-sha256 of '<t>.<body>'>"
DEFAULT_TOLERANCE_SECONDS = 300

SECRET_PREFIX = "whsec_"  # noqa: S105 (a label, not a secret)
# Domain separation: the JWT key also signs access tokens, so it is never used directly here.
_SERVER_KEY_LABEL = b"pixelfleet/webhooks/server-key/v1"
_USER_SECRET_LABEL = b"pixelfleet/webhooks/user-secret/v1:"


def _server_key(settings: Settings) -> bytes:
    if settings.webhook_secret is not None and settings.webhook_secret.get_secret_value():
        return settings.webhook_secret.get_secret_value().encode("utf-8")
    return hmac.new(
        settings.jwt_signing_key.encode("utf-8"), _SERVER_KEY_LABEL, hashlib.sha256
    ).digest()


def user_signing_secret(settings: Settings, user_id: uuid.UUID) -> str:
    """The secret that signs the webhooks of `user_id` (the receiver's HMAC key, as UTF-8)."""
    mac = hmac.new(
        _server_key(settings), _USER_SECRET_LABEL + str(user_id).encode(), hashlib.sha256
    )
    return SECRET_PREFIX + mac.hexdigest()


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `PixelFleet-Signature` value for `body` sent at `timestamp` (now by default)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return f"t={stamp},v1={_mac(secret, stamp, body)}"


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> bool:
    """Whether `header` signs exactly `body` with `secret`, at a time within `tolerance` seconds
    of `now`. Any `v1` entry may match (several appear while a secret is being rotated)."""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = _mac(secret, timestamp, body)
    # Every candidate is compared, in constant time each, so the timing says nothing either way.
    matches = [hmac.compare_digest(expected.encode(), c.encode()) for c in candidates]
    return any(matches)
