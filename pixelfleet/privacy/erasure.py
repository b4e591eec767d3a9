"""Erasing an account (`DELETE /v1/me`, or an administrator's erasure): in the caller's one
transaction,
- its queued and running tasks are cancelled through the one settlement (`settle_cancelled`):
  a queued task is refunded first, a running one stops; their launcher hears of it after the
  commit as for any cancel (Celery revokes the message, an embedded worker stops the run);
- every row of the account is deleted: tasks (with their outputs, derivatives, webhook
  deliveries and idempotency keys), presets, assets, uploads, API keys, logins (refresh
  tokens), password reset links and mail not sent yet;
- its payments and ledger lines are kept for accounting, on the account row, which stays
  anonymised: another email (so the address can sign up again), a password nothing matches,
  switched off, `erased_at` set, and a new credential epoch (no token issued before works).
  Ledger lines lose their task (ON DELETE SET NULL): every balance still equals its ledger.
  The payment provider's webhook events of its payments are kept without the payer's details.
After the commit, the account's stored files are deleted (noted in the transaction, so the upkeep
deletes any that the storage did not let go: `pixelfleet/orphaned_files.py`) and the launcher
forgets its tasks (Kubernetes deletes their ImageJobs, which nothing would
delete once their tasks are gone)."""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet import orphaned_files
from pixelfleet.accounts.repository import AccountRepository
from pixelfleet.accounts.service import require_password
from pixelfleet.db import after_commit, utcnow
from pixelfleet.jobs.settlement import settle_cancelled
from pixelfleet.models import User
from pixelfleet.privacy.repository import AccountDataRepository
from pixelfleet.privacy.schemas import ErasureAccepted
from pixelfleet.quotas import hold_account

if TYPE_CHECKING:
    from pixelfleet.context import ProcessContext

log = logging.getLogger(__name__)

ERASED_DOMAIN = "erased.invalid"
# Not an argon2 hash: `passwords.verify_password` finds no password that matches it.
UNUSABLE_PASSWORD_HASH = "!erased"  # noqa: S105


def erased_email(user_id: uuid.UUID) -> str:
    """The address an erased account keeps: its own (the column is unique), nobody's mailbox
    (`.invalid` is reserved for names that cannot exist)."""
    return f"erased-{user_id}@{ERASED_DOMAIN}"


@dataclass(frozen=True)
class Erasure:
    """What an erasure did."""

    user_id: uuid.UUID
    erased_at: datetime
    tasks_cancelled: int
    tasks_deleted: int
    files_deleted: int
    already_erased: bool = False

    def accepted(self) -> ErasureAccepted:
        said = (
            "This account was erased already."
            if self.already_erased
            else "The account is erased: its data is deleted, its stored files go now; its "
            "payments and ledger are kept for accounting under an anonymised account."
        )
        return ErasureAccepted(
            id=self.user_id,
            erased_at=self.erased_at,
            tasks_cancelled=self.tasks_cancelled,
            tasks_deleted=self.tasks_deleted,
            files_deleted=self.files_deleted,
            detail=said,
        )


async def erase_own_account(
    session: AsyncSession, user: User, password: str, retention: timedelta
) -> Erasure:
    """The account's own erasure (`DELETE /v1/me`): its password first (WrongPassword)."""
    await require_password(user, password, field="password")
    return await erase_account(session, user, retention)


async def erase_account(session: AsyncSession, user: User, retention: timedelta) -> Erasure:
    """Erases `user`'s account in the caller's transaction (see the module's doc); the files
    go once it commits. Erasing an erased account changes nothing."""
    # One transaction at a time adds to the account (a task, say) or erases it.
    await hold_account(session, user.id)
    repo = AccountDataRepository.from_session(session)
    if (erased_at := await repo.erased_at(user.id)) is not None:
        return Erasure(user.id, erased_at, 0, 0, 0, already_erased=True)
    cancelled = 0
    for task_id in await repo.active_task_ids(user.id):
        if await settle_cancelled(session, task_id, retention) is not None:
            cancelled += 1
    keys = await repo.stored_keys(user.id)
    task_ids = await repo.task_ids(user.id)
    deleted = await repo.delete_rows(user.id)
    now = utcnow()
    email = erased_email(user.id)
    await repo.anonymise_user(
        user.id,
        email=email,
        password_hash=UNUSABLE_PASSWORD_HASH,
        delivery_key_salt=secrets.token_hex(16),
        now=now,
    )
    await repo.anonymise_audit_rows(user.id, email)
    await repo.scrub_payment_events(user.id)
    # Every token issued before is refused from the next request on (the refresh tokens are
    # deleted already; the access tokens carry the old epoch).
    await AccountRepository.from_session(session).advance_credential_epoch(user.id)
    await orphaned_files.delete_after_commit(session, keys)
    _forget_tasks_after_commit(session, task_ids)
    return Erasure(user.id, now, cancelled, deleted, len(keys))


def _forget_tasks_after_commit(session: AsyncSession, task_ids: list[uuid.UUID]) -> None:
    async def forget(ctx: ProcessContext) -> None:
        await ctx.launcher.erased(task_ids)

    if task_ids:
        after_commit(session, forget)
