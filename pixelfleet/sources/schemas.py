"""How a JSON task submission names its image (`{"source": SOURCE}`): exactly one kind."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from pixelfleet.outbound import MAX_URL_LENGTH


class UrlSource(BaseModel):
    """An image the platform fetches before it accepts the task."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(
        max_length=MAX_URL_LENGTH,
        description="An http(s) URL of a public host.",
        examples=["https://images.example/photo.jpg"],
    )


class TaskSource(BaseModel):
    """The source image of one of the caller's earlier tasks."""

    model_config = ConfigDict(extra="forbid")
    task: uuid.UUID = Field(description="The id of one of the caller's tasks.")


class AssetSource(BaseModel):
    """One of the caller's assets."""

    model_config = ConfigDict(extra="forbid")
    asset: uuid.UUID = Field(description="The id of one of the caller's assets.")


class UploadSource(BaseModel):
    """One of the caller's direct uploads (`POST /v1/uploads`), its bytes sent."""

    model_config = ConfigDict(extra="forbid")
    upload: uuid.UUID = Field(description="The id of one of the caller's uploads.")


StoredSource = TaskSource | AssetSource | UploadSource
Source = UrlSource | TaskSource | AssetSource | UploadSource
SOURCE_KINDS: dict[str, type[UrlSource | TaskSource | AssetSource | UploadSource]] = {
    "url": UrlSource,
    "upload": UploadSource,
    "task": TaskSource,
    "asset": AssetSource,
}
"""Each kind of source by the one key that names it in `{"source": {KIND: ...}}`."""
