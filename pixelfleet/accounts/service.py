"""Registration, login, rotating refresh tokens and logout."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.accounts import api_keys, password_policy, passwords, scopes, tokens
from pixelfleet.accounts.errors import (
    AccountDisabled,
    AdminRequired,
    EmailTaken,
    InsufficientScope,
    InvalidCredentials,
    InvalidToken,
    RefreshTokenReused,
    UserNotFound,
    WeakPassword,
    WrongPassword,
)
from pixelfleet.accounts.repository import AccountRepository
from pixelfleet.accounts.schemas import TokenPair, UserOut
from pixelfleet.credits import service as credits
from pixelfleet.db import utcnow
from pixelfleet.errors import FieldError, InvalidInput
from pixelfleet.mail import letters
from pixelfleet.mail.outbox import queue_letter
from pixelfleet.models import RefreshToken, User


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_password(password: str, email: str, *, field: str = "password") -> None:
    """Refuses a password from the breached lists or one easy to guess (WeakPassword, naming
    the request's `field`)."""
    reason = password_policy.weakness(password, normalise_email(email))
    if reason is not None:
        raise WeakPassword(reason, errors=[FieldError(field, reason)])


async def register(
    session: AsyncSession,
    email: str,
    password: str,
    *,
    signup_credits: int,
    role: str = "user",
    email_verified: bool = False,
) -> User:
    """Creates a user and grants the signup credits, in the caller's transaction.

    EmailTaken tells the caller (an administrator, the command line) that the email is in use;
    the public sign-up answers the same either way (`sign_up`). `email_verified`: whoever
    creates the account vouches for its address (an operator at the command line)."""
    check_password(password, email)
    # Argon2 is deliberately slow: hash off the event loop, before the transaction starts.
    password_hash = await asyncio.to_thread(passwords.hash_password, password)
    repo = AccountRepository.from_session(session)
    email = normalise_email(email)
    taken = EmailTaken(f"An account with the email {email} already exists.")
    if await repo.user_by_email(email) is not None:
        raise taken
    user = User(
        email=email,
        password_hash=password_hash,
        role=role,
        balance=0,
        email_verified_at=utcnow() if email_verified else None,
    )
    try:
        async with session.begin_nested():
            await repo.add_user(user)
    except IntegrityError as exc:
        raise taken from exc
    if signup_credits > 0:
        await credits.grant(session, user.id, signup_credits, kind="grant", note="signup")
        await session.refresh(user, ["balance"])
    return user


async def sign_up(
    session: AsyncSession, email: str, password: str, *, signup_credits: int
) -> User | None:
    """The public sign-up: its caller says nothing of whether the email was free, so nobody
    can learn who has an account by trying to register theirs. The password is checked and
    hashed either way, so the answer takes as long too. The owner of a taken email just logs
    in. Returns the new account, None if the email had one."""
    try:
        return await register(session, email, password, signup_credits=signup_credits)
    except EmailTaken:
        return None


async def find_user(session: AsyncSession, email: str) -> User:
    user = await AccountRepository.from_session(session).user_by_email(normalise_email(email))
    if user is None:
        raise UserNotFound(f"No account has the email {email}.")
    return user


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    """The account these credentials open (reads only; the same time whether or not it exists)."""
    user = await AccountRepository.from_session(session).user_by_email(normalise_email(email))
    stored_hash = user.password_hash if user else None
    if not await asyncio.to_thread(passwords.verify_password, stored_hash, password) or not user:
        raise InvalidCredentials("The email or password is wrong.")
    if not user.is_active:
        raise AccountDisabled("This account is disabled.")
    return user


async def start_login(
    session: AsyncSession,
    user: User,
    password: str,
    signer: tokens.TokenSigner,
    refresh_ttl: timedelta,
) -> TokenPair:
    """Issues the tokens of a new login, upgrading the stored hash if its parameters are old."""
    if passwords.needs_rehash(user.password_hash):
        new_hash = await asyncio.to_thread(passwords.hash_password, password)
        await AccountRepository.from_session(session).set_password_hash(user.id, new_hash)
    now = utcnow()
    return await _issue_tokens(session, user, signer, uuid.uuid4(), now + refresh_ttl, now)


async def _issue_tokens(
    session: AsyncSession,
    user: User,
    signer: tokens.TokenSigner,
    family_id: uuid.UUID,
    expires_at: datetime,
    now: datetime,
) -> TokenPair:
    refresh = tokens.new_refresh_token()
    await AccountRepository.from_session(session).add_refresh_token(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=tokens.hash_refresh_token(refresh),
            created_at=now,
            expires_at=expires_at,
            credential_epoch=user.credential_epoch,
        )
    )
    return TokenPair(
        access_token=signer.issue_access_token(
            user.id, user.role, user.credential_epoch, family_id, now
        ),
        refresh_token=refresh,
        expires_in=int(signer.access_ttl.total_seconds()),
    )


@dataclass(frozen=True)
class RefreshOutcome:
    """What a refresh attempt decided: new tokens, or why not.

    A reuse must revoke the family even though the request fails, so the caller commits
    either way and raises `error` afterwards."""

    tokens: TokenPair | None
    error: Exception | None


async def rotate_refresh_token(
    session: AsyncSession, refresh_token: str, signer: tokens.TokenSigner
) -> RefreshOutcome:
    """Trades a refresh token for a new pair. The login keeps its original expiry: rotating
    does not extend it, so a stolen token cannot be kept alive forever."""
    now = utcnow()
    repo = AccountRepository.from_session(session)
    stored = await repo.refresh_token_by_hash(tokens.hash_refresh_token(refresh_token))
    if stored is None or stored.revoked_at is not None or stored.expires_at <= now:
        return RefreshOutcome(None, InvalidToken("The refresh token is invalid or has expired."))
    if stored.used_at is not None or not await repo.mark_refresh_token_used(stored.id, now):
        await repo.revoke_family(stored.family_id, now)
        return RefreshOutcome(
            None,
            RefreshTokenReused(
                "This refresh token was already used; every session from that login is now "
                "signed out. Log in again."
            ),
        )
    user = await repo.user_by_id(stored.user_id)
    if user is None or not user.is_active:
        return RefreshOutcome(None, AccountDisabled("This account is disabled."))
    if stored.credential_epoch != user.credential_epoch:
        # Every login of the account was ended after this token was issued (a revocation racing
        # this refresh may not have marked it yet): it opens nothing, even on a reactivated account.
        return RefreshOutcome(None, InvalidToken("The refresh token is invalid or has expired."))
    pair = await _issue_tokens(session, user, signer, stored.family_id, stored.expires_at, now)
    return RefreshOutcome(pair, None)


async def end_every_login(
    session: AsyncSession,
    user_id: uuid.UUID,
    now: datetime,
    *,
    except_login: uuid.UUID | None = None,
) -> int:
    """Ends every login of the account at once, in the caller's transaction: the access tokens
    and refresh tokens issued before stop working for good, whatever becomes of the account (a
    reactivation revives none). Deactivation and every change of credentials call this. Returns
    how many refresh tokens it revoked (API keys are not logins: they stay as they are).

    `except_login` (a `Caller.login_id`) keeps that one login going, as a password change keeps
    the caller's: its refresh token carries on into the new epoch, and its next refresh gives an
    access token that works (the one it holds now is refused like every other)."""
    repo = AccountRepository.from_session(session)
    # The epoch first: a refresh racing this transaction then either reads the new epoch after
    # its token was revoked, or issues in the old epoch, which is refused from now on.
    await repo.advance_credential_epoch(user_id)
    revoked = await repo.revoke_refresh_tokens_of_user(user_id, now, except_family=except_login)
    if except_login is not None:
        await repo.carry_login_into_current_epoch(user_id, except_login)
    return revoked


async def require_password(user: User, password: str, *, field: str) -> None:
    """Refuses (WrongPassword, naming the request's `field`) unless `password` is the
    account's: what a login proves again before it changes its credentials or erases."""
    if not await asyncio.to_thread(passwords.verify_password, user.password_hash, password):
        reason = "is not this account's password"
        label = field.replace("_", " ")
        raise WrongPassword(f"The {label} {reason}.", errors=[FieldError(field, reason)])


async def change_password(
    session: AsyncSession,
    caller: Caller,
    current_password: str,
    new_password: str,
    *,
    product_name: str,
) -> None:
    """Sets a new password for the caller's account, who proves the current one. Every other
    login ends (its tokens stop working); the caller's own login goes on through its refresh
    token (the access token it holds now is refused like every other). The account is mailed
    a notice, in case the change was not its holder's."""
    user = caller.user
    await require_password(user, current_password, field="current_password")
    if new_password == current_password:
        reason = "must differ from the current password"
        raise InvalidInput(
            f"The new password {reason}.", errors=[FieldError("new_password", reason)]
        )
    check_password(new_password, user.email, field="new_password")
    new_hash = await asyncio.to_thread(passwords.hash_password, new_password)
    repo = AccountRepository.from_session(session)
    await repo.set_password_hash(user.id, new_hash)
    await repo.use_password_resets_of_user(user.id, utcnow())  # a link asked for before ends
    await end_every_login(session, user.id, utcnow(), except_login=caller.login_id)
    await queue_letter(session, letters.password_changed(product_name, user.email), user.id)


async def logout(session: AsyncSession, refresh_token: str) -> None:
    """Ends the login the refresh token belongs to. Unknown tokens are ignored."""
    repo = AccountRepository.from_session(session)
    stored = await repo.refresh_token_by_hash(tokens.hash_refresh_token(refresh_token))
    if stored is not None:
        await repo.revoke_family(stored.family_id, utcnow())


@dataclass(frozen=True)
class Caller:
    """Who is calling, and what their credential lets them do."""

    user: User
    scopes: frozenset[str]
    api_key_id: uuid.UUID | None = None
    login_id: uuid.UUID | None = None  # the login an access token belongs to
    # An API key whose use now is due to be written down (`api_keys.use_unrecorded`).
    api_key_use_unrecorded: bool = False

    def require(self, needed: list[str]) -> None:
        """Refuses, naming what is missing, unless the credential holds every scope needed."""
        if scopes.ADMIN in needed and self.user.role != "admin":
            raise AdminRequired("This action needs the admin role.")
        if scopes.SESSION in needed and self.api_key_id is not None:
            raise InsufficientScope(
                "API keys cannot do this: log in (POST /v1/auth/token) and use the access token."
            )
        missing = sorted(set(needed) - self.scopes)
        if missing:
            raise InsufficientScope(f"This API key lacks the scope {', '.join(missing)}.")


def account_of(caller: Caller) -> UserOut:
    """The caller's account as they see it: its balance only to a credential that may read
    credits (any key may see whose it is)."""
    account = UserOut.model_validate(caller.user)
    if scopes.CREDITS_READ not in caller.scopes:
        account = account.model_copy(update={"balance": None})
    return account


async def caller_for_credential(
    session: AsyncSession, credential: str, signer: tokens.TokenSigner
) -> Caller:
    """The caller a bearer credential (an access token or an API key) stands for."""
    if api_keys.looks_like_api_key(credential):
        key = await api_keys.usable_key(session, credential, utcnow())
        user = await _usable_user(session, key.user_id, "The API key names no existing account.")
        unrecorded = api_keys.use_unrecorded(key, utcnow())
        return Caller(user, frozenset(key.scopes), key.id, api_key_use_unrecorded=unrecorded)
    claims = signer.read_access_token(credential)
    user = await _usable_user(
        session, claims.user_id, "The access token names no existing account."
    )
    if claims.credential_epoch != user.credential_epoch:
        raise InvalidToken(
            "The access token was issued before every login of this account was ended. "
            "Log in again."
        )
    # The role is read from the account, not the token: a demoted admin loses admin at once.
    return Caller(user, scopes.login_scopes(user.role), login_id=claims.login_id)


def access_claims(credential: str, signer: tokens.TokenSigner) -> tokens.AccessClaims | None:
    """What a bearer credential says if it is an access token (None for an API key), before
    its account is read; InvalidToken for a forged or expired one."""
    if api_keys.looks_like_api_key(credential):
        return None
    return signer.read_access_token(credential)


async def _usable_user(session: AsyncSession, user_id: uuid.UUID, unknown: str) -> User:
    user = await AccountRepository.from_session(session).user_by_id(user_id)
    if user is None or user.erased_at is not None:  # an erased account is nobody's any more
        raise InvalidToken(unknown)
    if not user.is_active:
        raise AccountDisabled("This account is disabled.")
    return user


async def forget_expired_refresh_tokens(session: AsyncSession) -> int:
    return await AccountRepository.from_session(session).delete_refresh_tokens_expired_before(
        utcnow()
    )
