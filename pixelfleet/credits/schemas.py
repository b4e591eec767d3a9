from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

EntryKind = Literal[
    "grant", "purchase", "purchase_reversal", "task_debit", "task_refund", "admin_adjust"
]


class CreditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: EntryKind
    amount: int
    balance_after: int
    task_id: uuid.UUID | None
    payment_id: uuid.UUID | None
    note: str | None
    created_at: datetime


class LedgerPage(BaseModel):
    items: list[CreditEntryOut]
    next_cursor: str | None


class CreditsOut(BaseModel):
    balance: int
    ledger: LedgerPage
