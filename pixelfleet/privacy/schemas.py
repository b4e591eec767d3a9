"""The documents of the account's data: its export (`AccountExport`, one JSON document of
everything the account holds) and what an erasure answers (`ErasureAccepted`).

The export holds no secret and nothing that works as a credential: no password hash, no API
key or its hash, no token of any kind, no webhook secret or delivery key, no signed URL (a
result is downloaded from `GET /v1/tasks/{id}/result` while it is kept)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pixelfleet.accounts.api_key_schemas import ApiKeyOut
from pixelfleet.assets.schemas import AssetOut
from pixelfleet.credits.schemas import CreditEntryOut
from pixelfleet.jobs.states import TaskStatus
from pixelfleet.payments.schemas import PaymentOut

EXPORT_FORMAT_VERSION: Literal[1] = 1


class _Row(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ExportedProfile(_Row):
    id: uuid.UUID
    email: str
    role: Literal["user", "admin"]
    is_active: bool
    balance: int
    created_at: datetime
    email_verified_at: datetime | None
    webhook_secret_rotated: bool = Field(
        description="Whether the webhook secret was ever rotated (the secret itself is not "
        "exported: `POST /v1/me/webhook-secret/rotate` shows a new one)."
    )


class ExportedOutput(_Row):
    name: str
    format: str
    content_type: str
    width: int
    height: int
    bytes: int
    stored: bool = Field(description="Whether its file is still kept (false once purged).")
    created_at: datetime


class ExportedWebhookDelivery(_Row):
    id: uuid.UUID
    event: str
    url: str
    payload: dict[str, Any]
    state: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class ExportedTask(_Row):
    id: uuid.UUID
    status: TaskStatus
    cost: int
    pipeline: dict[str, Any]
    api_key_id: uuid.UUID | None = Field(description="The API key that submitted it, if any.")
    source_kind: str
    source_ref: str | None
    source_format: str
    source_width: int
    source_height: int
    source_bytes: int
    error_code: str | None
    error_message: str | None
    callback_url: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None
    outputs: list[ExportedOutput]
    webhook_deliveries: list[ExportedWebhookDelivery]


class ExportedPreset(_Row):
    name: str
    pipeline: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ExportedUpload(_Row):
    id: uuid.UUID
    content_type: str
    bytes: int
    created_at: datetime
    expires_at: datetime
    received_at: datetime | None


class AccountExport(BaseModel):
    """Everything the account holds, as of `exported_at`."""

    format_version: Literal[1] = Field(
        default=EXPORT_FORMAT_VERSION,
        description="The layout of this document; a change that breaks readers raises it.",
    )
    exported_at: datetime
    profile: ExportedProfile
    ledger: list[CreditEntryOut] = Field(description="Oldest first.")
    payments: list[PaymentOut] = Field(description="Oldest first.")
    tasks: list[ExportedTask] = Field(
        description="Oldest first, each with its pipeline, outputs and webhook deliveries."
    )
    presets: list[ExportedPreset]
    assets: list[AssetOut] = Field(description="Their metadata (the images stay stored).")
    uploads: list[ExportedUpload]
    api_keys: list[ApiKeyOut] = Field(description="Their metadata (never a key).")


class AccountErasure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(
        min_length=1,
        max_length=256,
        description="The account's password: erasing cannot be undone.",
        examples=["violet kettle harbour 42"],
    )


class ErasureAccepted(BaseModel):
    """What an erasure did: the account's rows are gone (its stored files go right after)."""

    id: uuid.UUID = Field(description="The erased account (kept, anonymised, for its ledger).")
    erased_at: datetime
    tasks_cancelled: int = Field(description="Queued or running tasks cancelled first.")
    tasks_deleted: int
    files_deleted: int = Field(
        description="Stored files (sources, results, assets, uploads), deleted right after "
        "the erasure is stored."
    )
    detail: str
