"""The credit ledger: every balance change writes a ledger line in the same transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.credits.errors import BalanceTooHigh, BalanceTooLow, InsufficientCredits
from pixelfleet.credits.repository import CreditRepository
from pixelfleet.credits.schemas import CreditEntryOut, CreditsOut, EntryKind, LedgerPage
from pixelfleet.models import CreditEntry
from pixelfleet.pagination import decode_id_cursor, encode_cursor, page_of


async def _apply(
    session: AsyncSession,
    user_id: uuid.UUID,
    amount: int,
    *,
    kind: EntryKind,
    task_id: uuid.UUID | None = None,
    payment_id: uuid.UUID | None = None,
    reference: str | None = None,
    note: str | None = None,
) -> CreditEntry | None:
    repo = CreditRepository.from_session(session)
    balance = await repo.change_balance(user_id, amount)
    if balance is None:
        return None
    return await repo.add_entry(
        CreditEntry(
            user_id=user_id,
            kind=kind,
            amount=amount,
            balance_after=balance,
            task_id=task_id,
            payment_id=payment_id,
            reference=reference,
            note=note,
        )
    )


async def grant(
    session: AsyncSession,
    user_id: uuid.UUID,
    amount: int,
    *,
    kind: EntryKind,
    note: str | None = None,
) -> CreditEntry:
    if amount <= 0:
        raise ValueError("a grant must be positive")
    entry = await _apply(session, user_id, amount, kind=kind, note=note)
    assert entry is not None  # adding credits cannot fail the balance check
    return entry


# The balance column is a 32-bit integer: no change may carry it past this.
MAX_BALANCE = 2**31 - 1


@dataclass(frozen=True)
class Adjustment:
    entry: CreditEntry
    created: bool  # False: the reference had been used already, `entry` is that earlier line


async def adjust(
    session: AsyncSession,
    user_id: uuid.UUID,
    amount: int,
    *,
    note: str,
    reference: str | None = None,
) -> Adjustment:
    """An administrator's correction (`admin_adjust`): adds `amount` credits, or takes them back
    when it is negative. The balance stays within 0..MAX_BALANCE (`BalanceTooLow`,
    `BalanceTooHigh`: nothing changes). Once per `reference`: a second call with it changes
    nothing and hands back the line the first one wrote, whatever it was for."""
    repo = CreditRepository.from_session(session)
    # Locked first, so that a retry racing its original waits for it, then finds its line.
    balance = await repo.balance(user_id, lock=True)
    if reference is not None and (earlier := await repo.entry_by_reference(reference)):
        return Adjustment(earlier, created=False)
    if balance + amount < 0:
        raise BalanceTooLow(
            f"The balance is {balance} credits: taking back {-amount} would leave it below "
            f"zero. At most {balance} can be taken back."
        )
    if balance + amount > MAX_BALANCE:
        raise BalanceTooHigh(
            f"The balance is {balance} credits: adding {amount} would take it past {MAX_BALANCE}."
        )
    try:
        async with session.begin_nested():
            entry = await _apply(
                session, user_id, amount, kind="admin_adjust", reference=reference, note=note
            )
    except IntegrityError:
        # The same reference, written meanwhile for another account (whose row was not locked).
        earlier = await repo.entry_by_reference(reference) if reference is not None else None
        if earlier is None:
            raise
        return Adjustment(earlier, created=False)
    assert entry is not None  # the balance is locked and was checked
    return Adjustment(entry, created=True)


async def debit_for_task(
    session: AsyncSession, user_id: uuid.UUID, task_id: uuid.UUID, cost: int
) -> CreditEntry:
    """Takes a task's cost; 402 when the balance is too low (it never goes below zero)."""
    entry = await _apply(session, user_id, -cost, kind="task_debit", task_id=task_id)
    if entry is None:
        raise InsufficientCredits.for_cost(cost)
    return entry


async def refund_task(
    session: AsyncSession, user_id: uuid.UUID, task_id: uuid.UUID, cost: int, note: str
) -> bool:
    """Gives a task's cost back, at most once (the ledger's unique (task, kind) enforces it).

    Returns False when the task had already been refunded."""
    if cost <= 0:
        return False
    try:
        async with session.begin_nested():
            await _apply(session, user_id, cost, kind="task_refund", task_id=task_id, note=note)
    except IntegrityError:
        return False
    return True


async def grant_for_payment(
    session: AsyncSession,
    user_id: uuid.UUID,
    payment_id: uuid.UUID,
    credits: int,
    *,
    reference: str,
    note: str,
) -> bool:
    """Grants a paid pack's credits, once per `reference` (the provider's payment id): a second
    call with the same reference changes nothing and returns False."""
    try:
        async with session.begin_nested():
            await _apply(
                session,
                user_id,
                credits,
                kind="purchase",
                payment_id=payment_id,
                reference=reference,
                note=note,
            )
    except IntegrityError:
        return False
    return True


@dataclass(frozen=True)
class TakenBack:
    taken: int
    shortfall: int


async def take_back_for_refund(
    session: AsyncSession,
    user_id: uuid.UUID,
    payment_id: uuid.UUID,
    credits: int,
    *,
    reference: str,
    note: str,
) -> TakenBack | None:
    """Takes back up to `credits` for a refund, never below zero: what the balance no longer
    holds is the shortfall. Once per `reference` (the refund's id); None when already done."""
    repo = CreditRepository.from_session(session)
    balance = await repo.balance(user_id, lock=True)
    taken = min(credits, balance)
    if taken > 0:
        try:
            async with session.begin_nested():
                entry = await _apply(
                    session,
                    user_id,
                    -taken,
                    kind="purchase_reversal",
                    payment_id=payment_id,
                    reference=reference,
                    note=note,
                )
        except IntegrityError:
            return None
        assert entry is not None  # the balance is locked and holds `taken`
    return TakenBack(taken=taken, shortfall=credits - taken)


async def balance_and_ledger(
    session: AsyncSession, user_id: uuid.UUID, *, cursor: str | None, limit: int
) -> CreditsOut:
    repo = CreditRepository.from_session(session)
    before_id = decode_id_cursor(cursor) if cursor else None
    entries = await repo.entries(user_id, before_id=before_id, limit=limit + 1)
    page = page_of(entries, limit, lambda entry: encode_cursor({"id": entry.id}))
    return CreditsOut(
        balance=await repo.balance(user_id),
        ledger=LedgerPage(
            items=[CreditEntryOut.model_validate(entry) for entry in page.items],
            next_cursor=page.next_cursor,
        ),
    )


@dataclass(frozen=True)
class BalanceFinding:
    user_id: uuid.UUID
    email: str
    balance: int
    ledger_sum: int


@dataclass(frozen=True)
class LedgerAudit:
    """Every balance checked against the sum of its ledger (and against zero)."""

    users: int
    entries: int
    findings: list[BalanceFinding]

    @property
    def balanced(self) -> bool:
        return not self.findings


async def audit_ledger(session: AsyncSession) -> LedgerAudit:
    """Safe to run on a live database: it only reads."""
    repo = CreditRepository.from_session(session)
    users, entries = await repo.totals()
    findings = [
        BalanceFinding(user_id, email, balance, ledger_sum)
        for user_id, email, balance, ledger_sum in await repo.balances_off_their_ledger()
    ]
    return LedgerAudit(users=users, entries=entries, findings=findings)
