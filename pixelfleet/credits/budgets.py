"""Budgets: what the tasks admitted under a name (a CreditBinding's `namespace/name`) have
spent, from the ledger (their debits minus their refunds), and the refusal of a task that
would pass one. The ledger is the only record of spend: a budget has no counter to drift."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.errors import PixelFleetError
from pixelfleet.jobs.placement import Budget
from pixelfleet.models import CreditEntry, Task

TASK_KINDS = ("task_debit", "task_refund")


class BudgetExceeded(PixelFleetError):
    status = 402
    slug = "budget-exceeded"
    title = "Budget exceeded"
    example_detail = "This task costs 4 credits; the budget team-a/default has 2 left of 100."

    @classmethod
    def for_cost(cls, budget: Budget, spent: int, cost: int) -> BudgetExceeded:
        left = max(0, budget.limit - spent)
        return cls(
            f"This task costs {cost} credits; the budget {budget.name} has {left} left "
            f"of {budget.limit}."
        )


@dataclass(frozen=True)
class BudgetUse:
    spent: int
    """Credits charged minus credits refunded."""
    tasks: int
    """Tasks admitted under the budget."""


async def use_of(session: AsyncSession, names: Iterable[str]) -> dict[str, BudgetUse]:
    """What each named budget's tasks spent (every name is in the answer)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = await session.execute(
        select(
            Task.budget,
            func.count(func.distinct(Task.id)),
            func.coalesce(-func.sum(CreditEntry.amount), 0),
        )
        .outerjoin(
            CreditEntry, (CreditEntry.task_id == Task.id) & CreditEntry.kind.in_(TASK_KINDS)
        )
        .where(Task.budget.in_(wanted))
        .group_by(Task.budget)
    )
    use = {name: BudgetUse(0, 0) for name in wanted}
    use.update({str(name): BudgetUse(int(spent), int(tasks)) for name, tasks, spent in rows})
    return use


async def require_room(session: AsyncSession, budget: Budget, cost: int) -> None:
    """Refuses a task of `cost` that would take `budget` past its limit. The caller holds the
    account's row, so admissions under one account are weighed one after the other."""
    spent = (await use_of(session, [budget.name]))[budget.name].spent
    if spent + cost > budget.limit:
        raise BudgetExceeded.for_cost(budget, spent, cost)
