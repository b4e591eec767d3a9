"""Counting payments entering a state (`pixelfleet_payments_total`), once the transaction that
moved them has committed: a transition is a conditional UPDATE whose transaction (the request's,
or a savepoint around it) may still be rolled back."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.db import when_committed
from pixelfleet.observability.metrics import PAYMENTS


def count_state_entered(session: AsyncSession, state: str) -> None:
    """Counts a payment entering `state` when the session's outermost transaction commits
    (never, if the transaction this is called in is rolled back)."""
    when_committed(session, PAYMENTS.labels(state=state).inc)
