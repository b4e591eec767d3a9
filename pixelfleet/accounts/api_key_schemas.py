from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

KeyScope = Literal["tasks:read", "tasks:write", "credits:read"]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="What the key is for, to tell your keys apart.",
        examples=["thumbnailer on build server"],
    )
    scopes: list[KeyScope] = Field(
        min_length=1,
        max_length=3,
        description="What the key may do: `tasks:read`, `tasks:write`, `credits:read`.",
        examples=[["tasks:read", "tasks:write"]],
    )
    expires_in_days: int | None = Field(
        default=None, ge=1, le=3650, description="Days until the key stops working; none: never."
    )

    @field_validator("scopes")
    @classmethod
    def _unique(cls, scopes: list[KeyScope]) -> list[KeyScope]:
        if len(set(scopes)) != len(scopes):
            raise ValueError("each scope may be named once")
        return scopes


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters (the rest is never shown again).")
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(
        description="The key: send it as `Authorization: Bearer <key>`. Shown this once only."
    )


class ApiKeyPage(BaseModel):
    items: list[ApiKeyOut]
    next_cursor: str | None
