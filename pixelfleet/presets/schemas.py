from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from pixelfleet.imaging.spec import Pipeline, PipelineDocument

PresetName = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="Lower-case letters, digits, `-` and `_`; at most 64 characters.",
        examples=["avatar"],
    ),
]


class PresetReference(BaseModel):
    """A saved pipeline, named where a pipeline is asked for (`{"preset": NAME}`)."""

    model_config = ConfigDict(extra="forbid")

    preset: PresetName


class PresetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline: PipelineDocument = Field(
        description="A pipeline, as `POST /v1/tasks` takes it.",
        examples=[{"operations": [{"op": "thumbnail", "width": 128, "height": 128}]}],
    )


class PresetIn(PresetBody):
    name: PresetName


class PresetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    pipeline: Pipeline
    created_at: datetime
    updated_at: datetime


class PresetPage(BaseModel):
    items: list[PresetOut]
    next_cursor: str | None
