"""All SQL about users and refresh tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.accounts.tokens import AccessClaims
from pixelfleet.models import PasswordReset, RefreshToken, User


def honours(claims: AccessClaims) -> ColumnElement[bool]:
    """In SQL: the account an access token names exists, is active, and has not ended its
    logins since the token was issued (what `service.caller_for_credential` checks), for a
    statement that reads the account's own rows to check in passing."""
    return exists().where(
        User.id == claims.user_id,
        User.is_active.is_(True),
        User.credential_epoch == claims.credential_epoch,
    )


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> AccountRepository:
        return cls(session)

    async def user_by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(User.email == email))

    async def user_by_id(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def lock(self, user_id: uuid.UUID) -> None:
        """Holds the user's row (FOR UPDATE; SQLite's writing transactions hold the whole
        database already) until the transaction ends."""
        await self.session.execute(select(User.id).where(User.id == user_id).with_for_update())

    async def is_active(self, user_id: uuid.UUID) -> bool:
        """Whether the account is active, as stored now (not as this session first read it)."""
        return bool(await self.session.scalar(select(User.is_active).where(User.id == user_id)))

    async def add_user(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user

    async def add_refresh_token(self, token: RefreshToken) -> None:
        self.session.add(token)
        await self.session.flush()

    async def refresh_token_by_hash(self, token_hash: str) -> RefreshToken | None:
        return await self.session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash)
        )

    async def mark_refresh_token_used(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Marks an unused token used; False when another request used it first."""
        result = await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token_id, RefreshToken.used_at.is_(None))
            .values(used_at=now)
        )
        return bool(getattr(result, "rowcount", 0))

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def revoke_refresh_tokens_of_user(
        self, user_id: uuid.UUID, now: datetime, *, except_family: uuid.UUID | None = None
    ) -> int:
        """Revokes every refresh token of the user's logins (but one's, if named); how many were
        still unrevoked."""
        statement = update(RefreshToken).where(
            RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
        )
        if except_family is not None:
            statement = statement.where(RefreshToken.family_id != except_family)
        result = await self.session.execute(
            statement.values(revoked_at=now).execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def carry_login_into_current_epoch(
        self, user_id: uuid.UUID, family_id: uuid.UUID
    ) -> None:
        """Moves one login's unrevoked refresh tokens to the account's current credential epoch."""
        current = select(User.credential_epoch).where(User.id == user_id).scalar_subquery()
        await self.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.user_id == user_id,
                RefreshToken.family_id == family_id,
                RefreshToken.revoked_at.is_(None),
            )
            .values(credential_epoch=current)
            .execution_options(synchronize_session=False)
        )

    async def advance_credential_epoch(self, user_id: uuid.UUID) -> None:
        await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(credential_epoch=User.credential_epoch + 1)
            .execution_options(synchronize_session=False)
        )

    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(password_hash=password_hash)
            .execution_options(synchronize_session=False)
        )

    async def add_password_reset(self, reset: PasswordReset) -> None:
        self.session.add(reset)
        await self.session.flush()

    async def password_reset_by_hash(self, token_hash: str) -> PasswordReset | None:
        return await self.session.scalar(
            select(PasswordReset).where(PasswordReset.token_hash == token_hash)
        )

    async def use_password_reset(self, reset_id: uuid.UUID, now: datetime) -> bool:
        """Uses the reset link if it is still unused and unexpired; False if another use won."""
        result = await self.session.execute(
            update(PasswordReset)
            .where(
                PasswordReset.id == reset_id,
                PasswordReset.used_at.is_(None),
                PasswordReset.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def use_password_resets_of_user(self, user_id: uuid.UUID, now: datetime) -> int:
        """Uses up every reset link of the account still unused (the one being used, and any
        other mailed before it)."""
        result = await self.session.execute(
            update(PasswordReset)
            .where(PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def mark_email_verified(self, user_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(User)
            .where(User.id == user_id, User.email_verified_at.is_(None))
            .values(email_verified_at=now)
            .execution_options(synchronize_session=False)
        )

    async def delete_password_resets_expired_before(self, cutoff: datetime) -> int:
        result = await self.session.execute(
            delete(PasswordReset).where(PasswordReset.expires_at < cutoff)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def delete_refresh_tokens_expired_before(self, cutoff: datetime) -> int:
        result = await self.session.execute(
            delete(RefreshToken).where(RefreshToken.expires_at < cutoff)
        )
        return int(getattr(result, "rowcount", 0) or 0)
