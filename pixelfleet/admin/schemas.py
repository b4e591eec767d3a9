from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from pixelfleet.accounts.schemas import UserOut
from pixelfleet.credits.schemas import EntryKind
from pixelfleet.jobs.schemas import ErrorOut, SourceOut
from pixelfleet.jobs.states import TaskStatus
from pixelfleet.payments.schemas import PaymentStatus

AdminActionKind = Literal["deactivate_user", "reactivate_user", "adjust_credits", "erase_user"]
Role = Literal["user", "admin"]

# The most credits one correction may add or take back.
MAX_ADJUSTMENT = 1_000_000

Reason = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=3, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]


class AccountStatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(
        description="Why (3 to 255 characters, one line): it goes into the audit trail.",
        examples=["chargeback fraud, ticket #4711"],
    )


class CreditAdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int = Field(
        strict=True,
        ge=-MAX_ADJUSTMENT,
        le=MAX_ADJUSTMENT,
        description="Credits to add, or to take back when negative (never 0; at most "
        f"{MAX_ADJUSTMENT:,} either way). A take-back never leaves the balance below zero.",
        examples=[250, -40],
    )
    reason: Reason = Field(
        description="Why (3 to 255 characters, one line): the ledger entry's note, and the "
        "audit trail's reason.",
        examples=["compensation for the outage of 2 March"],
    )


class CreditAdjustmentOut(BaseModel):
    """The `admin_adjust` ledger entry the correction wrote."""

    entry_id: int
    user_id: uuid.UUID
    amount: int
    reason: str
    balance_after: int = Field(description="The balance right after this entry.")
    created_at: datetime


class UserPage(BaseModel):
    items: list[UserOut]
    next_cursor: str | None


class AdminUserOut(UserOut):
    tasks_by_status: dict[TaskStatus, int] = Field(description="The account's tasks, counted.")
    ledger_sum: int = Field(description="The sum of the account's ledger (equals `balance`).")
    usable_api_keys: int = Field(description="API keys neither revoked nor expired.")


class AdminTaskOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    status: TaskStatus
    stage: str | None
    progress: int
    cost: int
    attempts: int
    worker: str | None
    source: SourceOut
    error: ErrorOut | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class AdminTaskPage(BaseModel):
    items: list[AdminTaskOut]
    next_cursor: str | None


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    admin_id: uuid.UUID | None = Field(description="None for the command line.")
    admin_email: str = Field(description="Who: the administrator, or `cli:<OS user>`.")
    action: AdminActionKind
    target_user_id: uuid.UUID | None
    target_email: str | None
    reason: str | None
    details: dict[str, Any] = Field(description="What changed, e.g. the amount and new balance.")
    request_id: str | None = Field(description="The `X-Request-ID` of the request that did it.")
    created_at: datetime


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None


class UserCounts(BaseModel):
    total: int
    active: int
    inactive: int
    admins: int


class TaskCounts(BaseModel):
    total: int
    by_status: dict[TaskStatus, int]


class LedgerKindTotal(BaseModel):
    entries: int
    amount: int = Field(description="The sum of the entries' amounts (debits are negative).")


class CreditTotals(BaseModel):
    outstanding: int = Field(
        description="The sum of every balance (equals the sum of `by_kind`'s amounts)."
    )
    by_kind: dict[EntryKind, LedgerKindTotal]


class PaymentStateTotal(BaseModel):
    count: int
    credits: int
    amounts: dict[str, int] = Field(
        description="By currency, in its smallest unit (paise for INR).", examples=[{"INR": 49900}]
    )


class PaymentTotals(BaseModel):
    total: int
    by_status: dict[PaymentStatus, PaymentStateTotal]


class AdminStats(BaseModel):
    users: UserCounts
    tasks: TaskCounts
    credits: CreditTotals
    payments: PaymentTotals
    admin_actions: int = Field(description="Rows in the audit trail.")
