from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class AssetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    format: str
    width: int
    height: int
    bytes: int
    created_at: datetime


class AssetPage(BaseModel):
    items: list[AssetOut]
    next_cursor: str | None
