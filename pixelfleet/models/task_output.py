from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from pixelfleet.db import Base, UTCDateTime, utcnow


class TaskOutput(Base):
    """One stored result of a task: the single output, or one named variant."""

    __tablename__ = "task_outputs"

    task_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str | None] = mapped_column(String(255), nullable=True)  # None once purged
    format: Mapped[str] = mapped_column(String(16))
    content_type: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)
    # Of `format: auto` (whose own columns describe its JPEG or PNG): the AVIF and WebP
    # delivery may pick instead, each {"format", "content_type", "bytes", "key"}; their files
    # are deleted with the output's own (`key` None says all are gone).
    alternates: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    # When the output asked for one: its BlurHash or ThumbHash string, and its `#rrggbb`.
    placeholder: Mapped[str | None] = mapped_column(String(128), nullable=True)
    dominant_color: Mapped[str | None] = mapped_column(String(7), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def stored_files(self) -> list[tuple[str, int]]:
        """The (format, bytes) of each file of this output: its own, and its alternates'."""
        alternates = [(str(each["format"]), int(each["bytes"])) for each in self.alternates or []]
        return [(self.format, self.bytes), *alternates]

    def stored_keys(self) -> list[str]:
        """Every file of this output: its own, and its alternates'."""
        if self.key is None:
            return []
        return [self.key, *(str(alternate["key"]) for alternate in self.alternates or [])]
