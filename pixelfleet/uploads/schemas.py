from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pixelfleet.imaging.source_formats import SOURCE_CONTENT_TYPE_ALIASES, SOURCE_CONTENT_TYPES

UPLOAD_CONTENT_TYPES = (*SOURCE_CONTENT_TYPES.values(), *SOURCE_CONTENT_TYPE_ALIASES)
UploadStatus = Literal["waiting", "received", "expired"]


class UploadIn(BaseModel):
    """An image to be sent: its type and exact size."""

    model_config = ConfigDict(extra="forbid")
    content_type: str = Field(
        description="The image's media type; the bytes sent must be an image of this type.",
        examples=["image/jpeg"],
        json_schema_extra={"enum": list(UPLOAD_CONTENT_TYPES)},
    )
    bytes: int = Field(
        ge=1,
        description="The image's exact size in bytes (at most the upload limit).",
        examples=[482133],
    )

    @field_validator("content_type")
    @classmethod
    def _an_accepted_image_type(cls, value: str) -> str:
        if value not in UPLOAD_CONTENT_TYPES:
            raise ValueError(f"must be one of {', '.join(UPLOAD_CONTENT_TYPES)}")
        return value


class UploadTarget(BaseModel):
    """Where to send the bytes: `method` to `url` with `headers`, before `expires_at`."""

    id: uuid.UUID
    method: Literal["PUT"] = "PUT"
    url: str = Field(
        description="With S3 storage a presigned S3 URL; otherwise this API's "
        "`/v1/uploads/{id}/content?token=...`. The URL is the credential: send no "
        "Authorization header."
    )
    headers: dict[str, str] = Field(description="Headers the PUT must carry.")
    expires_at: datetime


class UploadOut(BaseModel):
    """An upload's state: `waiting` for its bytes, `received` (usable as `{"upload": id}`),
    or `expired` (its bytes deleted)."""

    id: uuid.UUID
    content_type: str
    bytes: int
    status: UploadStatus
    created_at: datetime
    expires_at: datetime
