"""How a JSON task submission names its image (`{"source": SOURCE}`): exactly one kind."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

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


SourceKind = Literal["file", "url", "upload", "task", "asset"]


@dataclass(frozen=True)
class SourceOrigin:
    """How a task's image came, as its record keeps it: `file` (uploaded with the task), or the
    kind of source a JSON submission named, with what it named (`ref`: the URL, or the id)."""

    kind: SourceKind = "file"
    ref: str | None = None

    @classmethod
    def of(cls, source: Source) -> SourceOrigin:
        if isinstance(source, UrlSource):
            return cls("url", source.url)
        if isinstance(source, UploadSource):
            return cls("upload", str(source.upload))
        if isinstance(source, TaskSource):
            return cls("task", str(source.task))
        return cls("asset", str(source.asset))


UPLOADED_WITH_THE_TASK = SourceOrigin()
"""The origin of an image sent in the submission's own body (a multipart `file`)."""
