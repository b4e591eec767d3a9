"""Per-account quotas: how many assets, bytes of assets, presets and active (queued or running)
tasks one account may hold (filled from settings by the caller).

A quota is checked in the transaction that then writes, after `hold_account` has locked the
account's row (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite runs one writing transaction at a
time already): two requests at once cannot both take an account's last unit.

What the client should do decides the status: an account's stored things stay until it deletes
some (403), while its active tasks free themselves as they finish (429 with `Retry-After`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.accounts.errors import AccountDisabled
from pixelfleet.accounts.repository import AccountRepository
from pixelfleet.errors import QuotaExceeded, QuotaExceededForNow

QuotaName = Literal[
    "max_assets_per_user",
    "max_asset_bytes_per_user",
    "max_presets_per_user",
    "max_active_tasks_per_user",
]

ACTIVE_TASKS_RETRY_AFTER_SECONDS = 5
"""How long a client whose account has too many active tasks waits before trying again: about
as long as a few typical tasks take to finish."""

# What each quota counts, and what the client can do about it.
_COUNTED: dict[QuotaName, tuple[str, str]] = {
    "max_assets_per_user": ("assets", "delete an asset to upload another"),
    "max_asset_bytes_per_user": ("bytes of assets", "delete assets to make room"),
    "max_presets_per_user": ("presets", "delete a preset to save another"),
    # The wait is in Retry-After (which the console adds to the detail it shows).
    "max_active_tasks_per_user": (
        "tasks queued or running",
        "send it again once some have finished (or cancel queued ones)",
    ),
}


@dataclass(frozen=True)
class AccountQuotas:
    """The limits, each named as its setting (`PIXELFLEET_` + the name in upper case)."""

    max_assets_per_user: int = 100
    max_asset_bytes_per_user: int = 100 * 1024 * 1024
    max_presets_per_user: int = 100
    max_active_tasks_per_user: int = 100

    def require_room(self, quota: QuotaName, *, usage: int, requested: int = 1) -> None:
        """Refuses (`quota-exceeded`) what would take the account's `usage` past the limit."""
        limit: int = getattr(self, quota)
        if usage + requested <= limit:
            return
        what, advice = _COUNTED[quota]
        if requested == 1:
            detail = f"This account has {usage} {what}; {quota} is {limit}: {advice}."
        else:
            detail = (
                f"This account has {usage} {what} and this request adds {requested}; "
                f"{quota} is {limit}: {advice}."
            )
        if quota == "max_active_tasks_per_user":
            raise QuotaExceededForNow(
                detail,
                quota=quota,
                limit=limit,
                usage=usage,
                requested=requested,
                retry_after_seconds=ACTIVE_TASKS_RETRY_AFTER_SECONDS,
            )
        raise QuotaExceeded(detail, quota=quota, limit=limit, usage=usage, requested=requested)


async def hold_account(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Locks the account's row until the transaction ends, so that what it holds is counted
    and added to by one transaction at a time."""
    await AccountRepository.from_session(session).lock(user_id)


async def require_active_account(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Refuses (AccountDisabled) an account switched off or erased since the request first
    read it (a long upload, say). Called once the row is held, so a deactivation or an
    erasure that committed first is seen, and one that comes later waits for this write."""
    if not await AccountRepository.from_session(session).is_active(user_id):
        raise AccountDisabled("This account is disabled.")


async def hold_active_account(session: AsyncSession, user_id: uuid.UUID) -> None:
    """`hold_account`, refusing an account no longer active (`require_active_account`)."""
    await hold_account(session, user_id)
    await require_active_account(session, user_id)
