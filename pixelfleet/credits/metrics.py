"""Counts the credits the ledger moves, by kind, once the entries are committed.

The ledger's services never commit (their callers do), so the count follows the session: a flush
notes the entries it inserted, the outermost commit counts those still in the session, and the
end of the transaction forgets the rest. An entry whose savepoint rolled back (a refund that was
already made, say) was expunged by that rollback, so the commit's check leaves it out.
Registered on the sync `Session` class, which every `AsyncSession` runs on.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, SessionTransaction

from pixelfleet.models import CreditEntry
from pixelfleet.observability.metrics import CREDITS

log = logging.getLogger(__name__)

_FLUSHED = "pixelfleet.credits.metrics.flushed"
"""The session.info key of the ledger entries inserted since the transaction began."""


@event.listens_for(Session, "after_flush")
def _note_new_entries(session: Session, _flush_context: Any) -> None:
    entries = [entry for entry in session.new if isinstance(entry, CreditEntry)]
    if entries:
        session.info.setdefault(_FLUSHED, []).extend(entries)


@event.listens_for(Session, "after_commit")
def _count_committed_entries(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: its entries count with the outer commit
    entries: list[CreditEntry] = session.info.pop(_FLUSHED, [])
    try:
        for entry in dict.fromkeys(entries):  # once each, even if flushed again
            if inspect(entry).persistent:
                CREDITS.labels(entry.kind).inc(abs(entry.amount))
    except Exception:  # the ledger is committed; a metric must not turn that into an error
        log.exception("could not count the committed ledger entries")


@event.listens_for(Session, "after_transaction_end")
def _forget_uncommitted_entries(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # rolled back, or closed without a commit
        session.info.pop(_FLUSHED, None)
