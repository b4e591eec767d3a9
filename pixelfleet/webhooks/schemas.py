from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DeliveryState = Literal["pending", "delivered", "failed", "refused"]


class DeliveryOut(BaseModel):
    """One event sent (or being sent) to a task's callback URL."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="Also sent as the `PixelFleet-Delivery` header.")
    event: str = Field(description="`task.succeeded`, `task.failed` or `task.cancelled`.")
    url: str
    state: DeliveryState = Field(
        description="`pending` (will be tried, or tried again), `delivered` (a 2xx answer), "
        "`failed` (no 2xx after every attempt) or `refused` (not a public address)."
    )
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any] = Field(description="The JSON body that is sent.")


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class WebhookSecretOut(BaseModel):
    secret: str = Field(description="The HMAC-SHA256 key (as UTF-8) that signs your webhooks.")
    signature_header: str
    scheme: str
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation: until when the previous secret still signs, in a second "
        "`v1` of the signature header; null when only `secret` signs."
    )
