"""Access tokens (JWT, algorithm pinned, `exp`/`iss`/`aud` checked) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jwt

from pixelfleet.accounts.errors import InvalidToken

ALGORITHM = "HS256"
VERIFIED_TOKENS_KEPT = 4096  # tokens whose signature and claims were checked, remembered
EPOCH_CLAIM = "epoch"
LOGIN_CLAIM = "sid"  # the login (refresh token family), as OpenID Connect names a session


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says: whose it is, the credential epoch it was issued in,
    and the login it belongs to (None in tokens from before logins were named)."""

    user_id: uuid.UUID
    credential_epoch: int
    login_id: uuid.UUID | None


@dataclass(frozen=True)
class TokenSigner:
    key: str
    issuer: str
    audience: str
    access_ttl: timedelta
    # token -> (its claims, its `exp`): a client sends the same token with every request, and
    # a token's signature and claims never change, only whether it has expired.
    _verified: dict[str, tuple[AccessClaims, float]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def issue_access_token(
        self,
        user_id: uuid.UUID,
        role: str,
        credential_epoch: int,
        login_id: uuid.UUID,
        now: datetime,
    ) -> str:
        claims = {
            "sub": str(user_id),
            "role": role,
            EPOCH_CLAIM: credential_epoch,
            LOGIN_CLAIM: str(login_id),
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(now.timestamp()),
            "exp": int((now + self.access_ttl).timestamp()),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self.key, algorithm=ALGORITHM)

    def read_access_token(self, token: str) -> AccessClaims:
        """What a token says; InvalidToken for anything forged, expired or foreign."""
        verified = self._verified.get(token)
        if verified is not None:
            claims, expires = verified
            if time.time() < expires:  # as PyJWT decides it (no leeway)
                return claims
            del self._verified[token]
            raise InvalidToken("The access token is invalid or has expired.")
        claims, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()
        self._verified[token] = (claims, expires)
        return claims

    def _verify(self, token: str) -> tuple[AccessClaims, float]:
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
            # A token without the claim was issued before epochs existed, in epoch 0 (it must
            # keep working through a rolling upgrade, while older replicas still issue such).
            epoch = claims.get(EPOCH_CLAIM, 0)
            if not isinstance(epoch, int) or isinstance(epoch, bool):
                raise ValueError("the credential epoch is not an integer")
            login = claims.get(LOGIN_CLAIM)
            read = AccessClaims(
                uuid.UUID(str(claims["sub"])),
                epoch,
                uuid.UUID(str(login)) if login is not None else None,
            )
            return read, float(claims["exp"])
        except (jwt.PyJWTError, ValueError) as exc:
            raise InvalidToken("The access token is invalid or has expired.") from exc


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What is kept of a random token handed out once (a refresh token, a reset link's): its
    SHA-256, enough to recognise it and useless to whoever reads the table."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_refresh_token(token: str) -> str:
    return hash_token(token)
