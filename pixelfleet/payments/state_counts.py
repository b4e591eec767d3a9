"""Counting payments entering a state (`pixelfleet_payments_total`), once the transaction that
moved them has committed.

A transition is a conditional UPDATE whose transaction may still be rolled back (with the
request that made it, or with a savepoint around it). So a transition is only noted on its
session; the commit of the outermost transaction counts the notes, and a rollback forgets those
of the transactions it undoes."""

from __future__ import annotations

import logging

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from pixelfleet.observability.metrics import PAYMENTS

log = logging.getLogger(__name__)

_NOTES = "pixelfleet.payments.states_entered"
"""The session.info key of the states entered in the session's transaction, not yet counted."""

Note = tuple[SessionTransaction, str]


def count_state_entered(session: AsyncSession, state: str) -> None:
    """Counts a payment entering `state` when the session's outermost transaction commits
    (never, if the transaction this is called in is rolled back)."""
    sync = session.sync_session
    notes: list[Note] | None = sync.info.get(_NOTES)
    if notes is None:
        notes = sync.info[_NOTES] = []
        event.listen(sync, "after_commit", _count_notes)
        event.listen(sync, "after_soft_rollback", _forget_undone)
        event.listen(sync, "after_transaction_end", _forget_unfinished)
    current = sync.get_nested_transaction() or sync.get_transaction()
    assert current is not None, "a payment changes state only inside a transaction"
    notes.append((current, state))


def _count_notes(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: its notes wait for the outermost transaction
    notes: list[Note] = session.info[_NOTES]
    try:
        for _, state in notes:
            PAYMENTS.labels(state=state).inc()
    except Exception:  # the payment is committed; a metric must not turn that into an error
        log.exception("could not count the payments' new states")
    finally:
        notes.clear()


def _within(transaction: SessionTransaction | None, undone: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is undone:
            return True
        transaction = transaction.parent
    return False


def _forget_undone(session: Session, undone: SessionTransaction) -> None:
    notes: list[Note] = session.info[_NOTES]
    notes[:] = [note for note in notes if not _within(note[0], undone)]


def _forget_unfinished(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ended: what its commit did not count (it was closed without
    # one) is never counted.
    if transaction.parent is None:
        session.info[_NOTES].clear()
