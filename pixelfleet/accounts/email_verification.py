"""Email verification. With `PIXELFLEET_REQUIRE_EMAIL_VERIFICATION`, a new account is mailed a
link at sign-up (and again when it asks), and cannot submit tasks or pay until the link is
opened (`require_verified`). The link's token is signed, not stored: it names the account and
its address, lasts a week, and opening it twice changes nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta

import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.accounts.errors import EmailNotVerified, VerificationLinkInvalid
from pixelfleet.accounts.links import AccountLinks
from pixelfleet.accounts.repository import AccountRepository
from pixelfleet.accounts.service import sign_up
from pixelfleet.accounts.tokens import ALGORITHM
from pixelfleet.db import utcnow
from pixelfleet.mail import letters
from pixelfleet.mail.outbox import queue_letter
from pixelfleet.models import User
from pixelfleet.settings import Settings

LINK_LIFETIME = timedelta(days=7)


def _audience(settings: Settings) -> str:
    """Its own audience: a verification token opens no account, nor an access token this."""
    return f"{settings.jwt_audience}:verify-email"


def verification_token(settings: Settings, user: User) -> str:
    now = utcnow()
    claims = {
        "sub": str(user.id),
        "email": user.email,
        "iss": settings.jwt_issuer,
        "aud": _audience(settings),
        "iat": int(now.timestamp()),
        "exp": int((now + LINK_LIFETIME).timestamp()),
    }
    return jwt.encode(claims, settings.jwt_signing_key, algorithm=ALGORITHM)


async def mail_verification_link(session: AsyncSession, settings: Settings, user: User) -> None:
    """Mails the account a link that verifies its email (nothing if it is verified)."""
    if user.email_verified_at is not None:
        return
    link = AccountLinks(settings).email_verification(verification_token(settings, user))
    await queue_letter(
        session, letters.email_verification(settings.product_name, user.email, link), user.id
    )


async def sign_up_and_verify(
    session: AsyncSession, settings: Settings, email: str, password: str
) -> None:
    """The public sign-up (`accounts.service.sign_up`), mailing a new account its
    verification link when verification is required."""
    user = await sign_up(session, email, password, signup_credits=settings.signup_credits)
    if user is not None and settings.require_email_verification:
        await mail_verification_link(session, settings, user)


async def verify_email(session: AsyncSession, settings: Settings, token: str) -> None:
    """Marks the account of a valid link as verified (VerificationLinkInvalid otherwise)."""
    invalid = VerificationLinkInvalid(
        "This verification link is not valid: it expired or it was mistyped. Log in and ask "
        "for a new one (POST /v1/me/email-verification)."
    )
    try:
        claims = jwt.decode(
            token,
            settings.jwt_signing_key,
            algorithms=[ALGORITHM],
            issuer=settings.jwt_issuer,
            audience=_audience(settings),
            options={"require": ["exp", "iss", "aud", "sub", "email"]},
        )
        user_id = uuid.UUID(str(claims["sub"]))
    except (jwt.PyJWTError, ValueError) as exc:
        raise invalid from exc
    repo = AccountRepository.from_session(session)
    user = await repo.user_by_id(user_id)
    if user is None or user.email != claims["email"]:
        raise invalid
    await repo.mark_email_verified(user.id, utcnow())


def require_verified(settings: Settings, user: User) -> None:
    """Refuses an account that has yet to verify its email, where verification is required."""
    if settings.require_email_verification and user.email_verified_at is None:
        raise EmailNotVerified(
            "Confirm your email first: open the link mailed to you at sign-up, or ask for a "
            "new one (POST /v1/me/email-verification)."
        )
