"""What a new installation needs before its first user: a first administrator. Seeding is
idempotent: run it at every deploy, it creates only what is missing and changes nothing else."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.accounts import service as accounts
from pixelfleet.accounts.repository import AccountRepository
from pixelfleet.admin.errors import SeedAdminIsNotAdmin, SeedPasswordMissing


async def seed_first_admin(
    session: AsyncSession,
    email: str,
    password_of: Callable[[], str | None],
    *,
    signup_credits: int,
) -> bool:
    """Creates the administrator `email` unless it exists (True when created); its password is
    asked of `password_of` only then. An existing admin is left as it is, its password included;
    an existing non-admin account is refused rather than promoted, so that a mistyped email
    cannot hand out the role."""
    existing = await AccountRepository.from_session(session).user_by_email(
        accounts.normalise_email(email)
    )
    if existing is not None:
        if existing.role != "admin":
            raise SeedAdminIsNotAdmin(
                f"{existing.email} already has an account, as a user; it was not made an admin."
            )
        return False
    password = password_of()
    if password is None:
        raise SeedPasswordMissing(f"No account has the email {email}: give its password.")
    await accounts.register(
        session, email, password, signup_credits=signup_credits, role="admin", email_verified=True
    )
    return True
