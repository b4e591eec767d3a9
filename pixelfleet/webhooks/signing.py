"""Webhook signatures, Stripe-style: `PixelFleet-Signature: t=<unix seconds>,v1=<hex HMAC>`.

The HMAC-SHA256 covers `"<t>.<raw body>"`, so a receiver that checks the timestamp can refuse
replays of an old, validly signed request. Each user has a secret of their own, derived from the
server key, the user's id and a random salt stored with the account (none until the first
rotation), so the database holds no usable secret and one user's secret tells nothing about
another's. After a rotation the previous secret signs too, in a second `v1`, until its grace ends.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

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


def user_signing_secret(settings: Settings, user_id: uuid.UUID, salt: str | None = None) -> str:
    """The secret that signs the webhooks of `user_id` (the receiver's HMAC key, as UTF-8), for
    the account's `salt` (None: the secret every account starts with)."""
    message = _USER_SECRET_LABEL + str(user_id).encode()
    if salt is not None:
        message += b":" + salt.encode()
    return SECRET_PREFIX + hmac.new(_server_key(settings), message, hashlib.sha256).hexdigest()


def new_salt() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class SigningSalts:
    """What an account's webhook secrets are derived from: its current salt, and the previous
    one with the moment it stops signing (None: no previous secret)."""

    current: str | None
    previous: str | None = None
    previous_until: datetime | None = None

    def previous_signs_at(self, now: datetime) -> bool:
        return self.previous_until is not None and now < self.previous_until


@dataclass(frozen=True)
class SigningSecrets:
    """The secrets that sign one account's webhooks at some moment."""

    current: str
    previous: str | None  # still signing, in a second `v1`, during the rotation's grace


def signing_secrets(
    settings: Settings, user_id: uuid.UUID, salts: SigningSalts, now: datetime
) -> SigningSecrets:
    previous = (
        user_signing_secret(settings, user_id, salts.previous)
        if salts.previous_signs_at(now)
        else None
    )
    return SigningSecrets(user_signing_secret(settings, user_id, salts.current), previous)


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(
    secret: str, body: bytes, timestamp: int | None = None, *, previous: str | None = None
) -> str:
    """The `PixelFleet-Signature` value for `body` sent at `timestamp` (now by default): one
    `v1` by `secret`, and a second by `previous` while a rotated-out secret still signs."""
    stamp = int(time.time()) if timestamp is None else timestamp
    header = f"t={stamp},v1={_mac(secret, stamp, body)}"
    if previous is not None:
        header += f",v1={_mac(previous, stamp, body)}"
    return header


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
