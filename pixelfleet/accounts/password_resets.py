"""Password resets by mail. A reset is asked for by email address, and the answer never says
whether the address has an account; a link is mailed only to an active account. The link's
token is random and kept only as a hash; it works once, for `PIXELFLEET_PASSWORD_RESET_MINUTES`.
Using it sets the new password, uses up every other link of the account, ends every login
(every token issued before stops working) and, as it proves the mailbox, verifies the email."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.accounts import passwords
from pixelfleet.accounts.errors import AccountDisabled, ResetLinkInvalid
from pixelfleet.accounts.links import AccountLinks
from pixelfleet.accounts.repository import AccountRepository
from pixelfleet.accounts.service import check_password, end_every_login, normalise_email
from pixelfleet.accounts.tokens import hash_token
from pixelfleet.db import utcnow
from pixelfleet.mail import letters
from pixelfleet.mail.outbox import queue_letter
from pixelfleet.models import PasswordReset
from pixelfleet.settings import Settings


async def ask_for_reset(session: AsyncSession, settings: Settings, email: str) -> None:
    """Mails a reset link to the account of `email`, if it has one and it is active; does
    nothing otherwise (the caller answers the same either way)."""
    user = await AccountRepository.from_session(session).user_by_email(normalise_email(email))
    if user is None or not user.is_active:
        return
    token = secrets.token_urlsafe(32)
    now = utcnow()
    minutes = settings.password_reset_minutes
    await AccountRepository.from_session(session).add_password_reset(
        PasswordReset(
            user_id=user.id,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
    )
    link = AccountLinks(settings).password_reset(token)
    letter = letters.password_reset(settings.product_name, user.email, link, minutes)
    await queue_letter(session, letter, user.id)


async def forget_expired_links(session: AsyncSession) -> int:
    """Deletes the reset links past their expiry (used or not): they open nothing."""
    repo = AccountRepository.from_session(session)
    return await repo.delete_password_resets_expired_before(utcnow())


async def reset_password(session: AsyncSession, token: str, new_password: str) -> None:
    """Sets `new_password` on the account of a valid, unused reset link (ResetLinkInvalid
    otherwise). A weak password is refused before the link is used, so it can be tried again."""
    repo = AccountRepository.from_session(session)
    now = utcnow()
    reset = await repo.password_reset_by_hash(hash_token(token))
    invalid = ResetLinkInvalid(
        "This password reset link is not valid: it was used, it expired or it was mistyped. "
        "Ask for a new one (POST /v1/auth/password-reset)."
    )
    if reset is None or reset.used_at is not None or reset.expires_at <= now:
        raise invalid
    user = await repo.user_by_id(reset.user_id)
    if user is None:
        raise invalid
    if not user.is_active:
        raise AccountDisabled("This account is disabled.")
    check_password(new_password, user.email, field="new_password")
    new_hash = await asyncio.to_thread(passwords.hash_password, new_password)
    if not await repo.use_password_reset(reset.id, now):
        raise invalid  # used meanwhile, by a request that raced this one
    await repo.use_password_resets_of_user(user.id, now)
    await repo.set_password_hash(user.id, new_hash)
    await repo.mark_email_verified(user.id, now)
    await end_every_login(session, user.id, now)
