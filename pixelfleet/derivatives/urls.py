"""Derivative URLs (`/v1/images/{token}`): the token binds an account, one of its stored images
and one of its presets (as the preset stood), signed with the account's own delivery key.

Each account's key is derived from the server's JWT key, the account's id and its salt
(`users.delivery_key_salt`), so no key is stored: a new salt (a rotation) is a new key, and every
URL signed with the one before stops working. The token names its account in the clear, which
says whose key checks it; it has no expiry (the image it names never changes)."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from pixelfleet.derivatives.errors import ImageUrlInvalid
from pixelfleet.derivatives.schemas import ImageSource
from pixelfleet.settings import Settings
from pixelfleet.sources.schemas import AssetSource, TaskSource

_KEY_LABEL = b"pixelfleet/images/delivery-key/v1"
_ALGORITHM = "HS256"
_AUDIENCE = "pixelfleet:image"
PATH_PREFIX = "/v1/images/"
_INVALID = "This image URL is not one this account's delivery key signs."


def pipeline_digest(pipeline: dict[str, Any]) -> str:
    """A short, stable name of a preset's pipeline as stored: a changed preset has another."""
    canonical = json.dumps(pipeline, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True)
class ImageUrlClaims:
    """What a derivative URL names."""

    user_id: uuid.UUID
    source: ImageSource
    preset: str
    digest: str
    """`pipeline_digest` of the preset when the URL was signed."""


def _source_claim(source: ImageSource) -> str:
    if isinstance(source, TaskSource):
        return f"t:{source.task}"
    return f"a:{source.asset}"


def _source_of(claim: str) -> ImageSource:
    kind, _, ident = claim.partition(":")
    if kind == "t":
        return TaskSource(task=uuid.UUID(ident))
    if kind == "a":
        return AssetSource(asset=uuid.UUID(ident))
    raise ValueError(claim)


class DeliveryKeys:
    """Signs and checks derivative URLs with each account's delivery key."""

    def __init__(self, settings: Settings) -> None:
        self._server_key = hmac.new(
            settings.jwt_signing_key.encode("utf-8"), _KEY_LABEL, hashlib.sha256
        ).digest()
        self._base = (settings.public_url or "").rstrip("/")

    def _key(self, user_id: uuid.UUID, salt: str | None) -> bytes:
        message = str(user_id).encode()
        if salt is not None:
            message += b":" + salt.encode()
        return hmac.new(self._server_key, message, hashlib.sha256).digest()

    def url(self, claims: ImageUrlClaims, salt: str | None) -> str:
        payload = {
            "aud": _AUDIENCE,
            "u": str(claims.user_id),
            "s": _source_claim(claims.source),
            "p": claims.preset,
            "h": claims.digest,
        }
        token = jwt.encode(payload, self._key(claims.user_id, salt), algorithm=_ALGORITHM)
        return f"{self._base}{PATH_PREFIX}{token}"

    @staticmethod
    def signer(token: str) -> uuid.UUID:
        """The account a token says signed it (not yet checked: `verify` does that with its
        key)."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            return uuid.UUID(str(claims["u"]))
        except (jwt.InvalidTokenError, KeyError, ValueError, TypeError):
            raise ImageUrlInvalid(_INVALID) from None

    def verify(self, token: str, user_id: uuid.UUID, salt: str | None) -> ImageUrlClaims:
        """What the token names, if `user_id`'s current key signed it (else ImageUrlInvalid)."""
        try:
            claims = jwt.decode(
                token,
                self._key(user_id, salt),
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                options={"require": ["aud"]},
            )
            if str(claims["u"]) != str(user_id):
                raise ValueError("another account")
            return ImageUrlClaims(
                user_id=user_id,
                source=_source_of(str(claims["s"])),
                preset=str(claims["p"]),
                digest=str(claims["h"]),
            )
        except (jwt.InvalidTokenError, KeyError, ValueError, TypeError):
            raise ImageUrlInvalid(_INVALID) from None
