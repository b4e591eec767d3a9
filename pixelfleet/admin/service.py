"""What administrators may do. Every change writes its row of the audit trail (`AdminAction`) in
the caller's transaction, so a change is never stored without its row, nor a row without its
change. Reads are not audited."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.accounts import service as accounts
from pixelfleet.accounts.api_key_repository import ApiKeyRepository
from pixelfleet.accounts.errors import UserNotFound
from pixelfleet.accounts.schemas import UserOut
from pixelfleet.admin.errors import AdjustmentKeyReused, CannotDeactivateSelf, CannotEraseSelf
from pixelfleet.admin.repository import AdminRepository
from pixelfleet.admin.schemas import (
    MAX_ADJUSTMENT,
    AdminActionKind,
    AdminStats,
    AdminTaskOut,
    AdminTaskPage,
    AdminUserOut,
    AuditEntryOut,
    AuditPage,
    CreditAdjustmentOut,
    CreditTotals,
    LedgerKindTotal,
    PaymentStateTotal,
    PaymentTotals,
    TaskCounts,
    UserCounts,
    UserPage,
)
from pixelfleet.credits import service as credits
from pixelfleet.credits.repository import CreditRepository
from pixelfleet.credits.schemas import EntryKind
from pixelfleet.db import utcnow
from pixelfleet.errors import FieldError, InvalidInput
from pixelfleet.jobs.schemas import SourceOut, error_of
from pixelfleet.jobs.states import ALL_STATES
from pixelfleet.models import AdminAction, CreditEntry, Task, User
from pixelfleet.pagination import (
    decode_id_cursor,
    decode_time_cursor,
    encode_cursor,
    encode_time_cursor,
    page_of,
)
from pixelfleet.payments.schemas import PaymentStatus
from pixelfleet.privacy import erasure
from pixelfleet.privacy.schemas import ErasureAccepted

MAX_IDEMPOTENCY_KEY_LENGTH = 255
ENTRY_KINDS: tuple[EntryKind, ...] = get_args(EntryKind)
PAYMENT_STATES: tuple[PaymentStatus, ...] = get_args(PaymentStatus)


@dataclass(frozen=True)
class Actor:
    """Who makes a change: an administrator's login, or someone at the command line."""

    admin_id: uuid.UUID | None
    admin_email: str
    request_id: str | None = None

    @classmethod
    def of(cls, admin: User, request_id: str | None) -> Actor:
        return cls(admin.id, admin.email, request_id)

    @classmethod
    def command_line(cls, os_user: str) -> Actor:
        return cls(None, f"cli:{os_user}"[:320])


@dataclass(frozen=True)
class AdjustmentResult:
    adjustment: CreditAdjustmentOut
    replayed: bool  # the same Idempotency-Key was applied before: nothing changed now


async def _target(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await AdminRepository.from_session(session).user(user_id)
    if user is None:
        raise UserNotFound(f"No account has the id {user_id}.")
    return user


async def _record(
    session: AsyncSession,
    actor: Actor,
    action: AdminActionKind,
    target: User,
    reason: str,
    details: dict[str, Any],
    *,
    target_email: str | None = None,
) -> None:
    await AdminRepository.from_session(session).add_action(
        AdminAction(
            admin_id=actor.admin_id,
            admin_email=actor.admin_email,
            action=action,
            target_user_id=target.id,
            target_email=target_email or target.email,
            reason=reason,
            details=details,
            request_id=actor.request_id,
        )
    )


async def list_users(
    session: AsyncSession,
    *,
    email: str | None,
    role: str | None,
    active: bool | None,
    cursor: str | None,
    limit: int,
) -> UserPage:
    """Every account, newest first; `email` matches any part of the address."""
    after = decode_time_cursor(cursor) if cursor else None
    users = await AdminRepository.from_session(session).users_page(
        email_part=email.strip().lower() if email else None,
        role=role,
        active=active,
        after=after,
        limit=limit + 1,
    )
    page = page_of(users, limit, lambda user: encode_time_cursor(user.created_at, user.id))
    return UserPage(
        items=[UserOut.model_validate(user) for user in page.items], next_cursor=page.next_cursor
    )


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> AdminUserOut:
    user = await _target(session, user_id)
    repo = AdminRepository.from_session(session)
    counted = await repo.tasks_by_status(user.id)
    return AdminUserOut(
        **UserOut.model_validate(user).model_dump(),
        tasks_by_status={state: counted.get(state, 0) for state in ALL_STATES},
        ledger_sum=await CreditRepository.from_session(session).ledger_sum(user.id),
        usable_api_keys=await ApiKeyRepository.from_session(session).count_usable(
            user.id, utcnow()
        ),
    )


async def deactivate_user(
    session: AsyncSession, actor: Actor, user_id: uuid.UUID, reason: str
) -> UserOut:
    """Switches the account off and ends every way in: every login ends for good (its access and
    refresh tokens are refused from the next request on, even after a reactivation) and its API
    keys are revoked. Deactivating an inactive account changes nothing."""
    target = await _target(session, user_id)
    if actor.admin_id == target.id:
        raise CannotDeactivateSelf(
            "You cannot deactivate your own account; ask another administrator."
        )
    repo = AdminRepository.from_session(session)
    if await repo.set_active(target.id, False):
        now = utcnow()
        refresh_tokens = await accounts.end_every_login(session, target.id, now)
        api_keys = await ApiKeyRepository.from_session(session).revoke_all_of_user(target.id, now)
        await _record(
            session,
            actor,
            "deactivate_user",
            target,
            reason,
            {"refresh_tokens_revoked": refresh_tokens, "api_keys_revoked": api_keys},
        )
    return UserOut.model_validate(await _target(session, user_id))


async def reactivate_user(
    session: AsyncSession, actor: Actor, user_id: uuid.UUID, reason: str
) -> UserOut:
    """Switches the account back on: its owner can log in again (the logins ended and the keys
    revoked at deactivation stay ended: no token issued before works again). Reactivating an
    active account changes nothing, and an erased account stays off."""
    target = await _target(session, user_id)
    repo = AdminRepository.from_session(session)
    if target.erased_at is None and await repo.set_active(target.id, True):
        await _record(session, actor, "reactivate_user", target, reason, {})
    return UserOut.model_validate(await _target(session, user_id))


async def erase_user(
    session: AsyncSession, actor: Actor, user_id: uuid.UUID, reason: str, retention: timedelta
) -> ErasureAccepted:
    """Erases the account as its owner's `DELETE /v1/me` does (`pixelfleet.privacy.erasure`),
    with an audit row that names it by its anonymised email. An administrator erases their own
    account only as its owner, with its password. Erasing an erased account changes nothing
    (and is not audited again)."""
    target = await _target(session, user_id)
    if actor.admin_id == target.id:
        raise CannotEraseSelf(
            "You cannot erase your own account here: use DELETE /v1/me with your password."
        )
    erased = await erasure.erase_account(session, target, retention)
    if not erased.already_erased:
        details = {
            "tasks_cancelled": erased.tasks_cancelled,
            "tasks_deleted": erased.tasks_deleted,
            "files_deleted": erased.files_deleted,
        }
        email = erasure.erased_email(target.id)
        await _record(session, actor, "erase_user", target, reason, details, target_email=email)
    return erased.accepted()


def _check_adjustment(amount: int, idempotency_key: str | None) -> None:
    if amount == 0 or abs(amount) > MAX_ADJUSTMENT:
        raise InvalidInput(
            f"An adjustment adds or takes back 1 to {MAX_ADJUSTMENT} credits.",
            errors=[FieldError("amount", f"must be non-zero and at most {MAX_ADJUSTMENT} apart")],
        )
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= (
        MAX_IDEMPOTENCY_KEY_LENGTH
    ):
        raise InvalidInput(
            "The Idempotency-Key header must be 1 to 255 characters.",
            errors=[FieldError("Idempotency-Key", "must be 1 to 255 characters")],
        )


def _reference(actor: Actor, idempotency_key: str) -> str:
    """The ledger reference of an administrator's keyed adjustment: one per (admin, key)."""
    who = str(actor.admin_id) if actor.admin_id else actor.admin_email
    digest = hashlib.sha256(f"{who}\0{idempotency_key}".encode()).hexdigest()
    return f"admin_adjust:{digest}"


def _adjustment_out(entry: CreditEntry) -> CreditAdjustmentOut:
    return CreditAdjustmentOut(
        entry_id=entry.id,
        user_id=entry.user_id,
        amount=entry.amount,
        reason=entry.note or "",
        balance_after=entry.balance_after,
        created_at=entry.created_at,
    )


async def adjust_credits(
    session: AsyncSession,
    actor: Actor,
    user_id: uuid.UUID,
    amount: int,
    reason: str,
    *,
    idempotency_key: str | None = None,
) -> AdjustmentResult:
    """Adds credits (or takes them back, `amount` < 0) with an `admin_adjust` ledger entry whose
    note is the reason; never below zero. With an idempotency key, a repeat of the same
    adjustment by the same administrator answers the first one's result and changes nothing;
    the key reused for a different adjustment is refused."""
    _check_adjustment(amount, idempotency_key)
    target = await _target(session, user_id)
    reference = _reference(actor, idempotency_key) if idempotency_key is not None else None
    outcome = await credits.adjust(session, target.id, amount, note=reason, reference=reference)
    entry = outcome.entry
    if not outcome.created:
        if (entry.user_id, entry.amount, entry.note) != (target.id, amount, reason):
            raise AdjustmentKeyReused(
                "This Idempotency-Key was already used for a different adjustment."
            )
        return AdjustmentResult(_adjustment_out(entry), replayed=True)
    details: dict[str, Any] = {
        "amount": amount,
        "balance_after": entry.balance_after,
        "ledger_entry_id": entry.id,
    }
    if idempotency_key is not None:
        details["idempotency_key"] = idempotency_key
    await _record(session, actor, "adjust_credits", target, reason, details)
    return AdjustmentResult(_adjustment_out(entry), replayed=False)


def _task_out(task: Task) -> AdminTaskOut:
    return AdminTaskOut(
        id=task.id,
        user_id=task.user_id,
        status=task.status,
        stage=task.stage,
        progress=task.progress,
        cost=task.cost,
        attempts=task.attempts,
        worker=task.worker,
        source=SourceOut.of(task),
        error=error_of(task),
        created_at=task.created_at,
        updated_at=task.updated_at,
        started_at=task.started_at,
        finished_at=task.finished_at,
    )


async def list_tasks(
    session: AsyncSession,
    *,
    status: str | None,
    user_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> AdminTaskPage:
    """Everyone's tasks, newest first."""
    after = decode_time_cursor(cursor) if cursor else None
    tasks = await AdminRepository.from_session(session).tasks_page(
        status=status, user_id=user_id, after=after, limit=limit + 1
    )
    page = page_of(tasks, limit, lambda task: encode_time_cursor(task.created_at, task.id))
    return AdminTaskPage(items=[_task_out(t) for t in page.items], next_cursor=page.next_cursor)


async def stats(session: AsyncSession) -> AdminStats:
    """The installation on one screen: accounts, tasks, credits, payments, the audit trail."""
    repo = AdminRepository.from_session(session)
    users, active, admins = await repo.user_counts()
    tasks = await repo.tasks_by_status()
    ledger = await repo.ledger_by_kind()
    payments: dict[PaymentStatus, PaymentStateTotal] = {
        state: PaymentStateTotal(count=0, credits=0, amounts={}) for state in PAYMENT_STATES
    }
    for state, currency, count, granted, amount in await repo.payments_by_status():
        if state not in PAYMENT_STATES:
            continue  # a state this release does not know
        total = payments[state]
        total.count += count
        total.credits += granted
        total.amounts[currency] = total.amounts.get(currency, 0) + amount
    return AdminStats(
        users=UserCounts(total=users, active=active, inactive=users - active, admins=admins),
        tasks=TaskCounts(
            total=sum(tasks.values()),
            by_status={state: tasks.get(state, 0) for state in ALL_STATES},
        ),
        credits=CreditTotals(
            outstanding=await repo.balances_total(),
            by_kind={
                kind: LedgerKindTotal(entries=entries, amount=amount)
                for kind in ENTRY_KINDS
                for entries, amount in [ledger.get(kind, (0, 0))]
            },
        ),
        payments=PaymentTotals(
            total=sum(total.count for total in payments.values()), by_status=payments
        ),
        admin_actions=await repo.count_actions(),
    )


async def audit_trail(
    session: AsyncSession,
    *,
    action: str | None,
    target_user_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> AuditPage:
    """The administrators' changes, newest first."""
    before_id = decode_id_cursor(cursor) if cursor else None
    rows = await AdminRepository.from_session(session).actions_page(
        action=action, target_user_id=target_user_id, before_id=before_id, limit=limit + 1
    )
    page = page_of(rows, limit, lambda row: encode_cursor({"id": row.id}))
    return AuditPage(
        items=[AuditEntryOut.model_validate(row) for row in page.items],
        next_cursor=page.next_cursor,
    )
