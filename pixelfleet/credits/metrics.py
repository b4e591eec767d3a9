"""Counts the credits the ledger moves, by kind, once the entries are committed.

The ledger's services never commit (their callers do): each flush that inserts ledger entries
leaves their count waiting for the commit (`when_committed`) in the transaction, or savepoint,
that flushed them, so a rolled-back entry (a refund that was already made, say) never counts.
Registered on the sync `Session` class, which every `AsyncSession` runs on.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from pixelfleet.db import when_committed
from pixelfleet.models import CreditEntry
from pixelfleet.observability.metrics import CREDITS


@event.listens_for(Session, "after_flush")
def _count_new_entries_at_commit(session: Session, _flush_context: Any) -> None:
    for entry in session.new:
        if isinstance(entry, CreditEntry):
            when_committed(session, partial(CREDITS.labels(entry.kind).inc, abs(entry.amount)))
