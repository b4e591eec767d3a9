"""What `POST /v1/image-urls` takes and answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from pixelfleet.sources.schemas import AssetSource, TaskSource

ImageSource = TaskSource | AssetSource
"""The stored images a derivative URL may name: an asset, or the source of one of the
account's tasks (never a URL or an upload, which are not kept)."""


class ImageUrlIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "source": {"asset": "0b5a3c1e-9d2f-4c3a-8e1b-2f4d6a8c0e12"},
                "preset": "thumb",
            }
        },
    )

    source: ImageSource = Field(
        description='`{"asset": ID}` or `{"task": ID}` (that task\'s source image).'
    )
    preset: str = Field(
        min_length=1,
        max_length=64,
        description="One of the account's presets, of one output (no variants).",
    )


class ImageUrlOut(BaseModel):
    url: str = Field(
        description="`/v1/images/{token}` (absolute under `PIXELFLEET_PUBLIC_URL`): the image, "
        "made on first read, with no credential; it works until the preset changes or the "
        "account's delivery key is rotated."
    )


class DeliveryKeyRotated(BaseModel):
    rotated_at: datetime = Field(
        description="When: every derivative URL signed before stops working."
    )
