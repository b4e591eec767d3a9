from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from pixelfleet.db import Base, UTCDateTime, utcnow


class Derivative(Base):
    """An image made on demand for a derivative URL (`GET /v1/images/{token}`): which task made
    one stored source through one preset, in one negotiated format. The unique key makes the
    first request that derives it the only one (and the only one charged)."""

    __tablename__ = "derivatives"
    __table_args__ = (
        UniqueConstraint(
            "user_id",
            "source_kind",
            "source_id",
            "preset",
            "preset_digest",
            "choice",
            name="uq_derivatives_key",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    source_kind: Mapped[str] = mapped_column(String(8))
    """`task` (that task's source) or `asset`."""
    source_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    preset: Mapped[str] = mapped_column(String(64))
    preset_digest: Mapped[str] = mapped_column(String(32))
    """The preset's pipeline as the URL was signed for it (a changed preset is another image)."""
    choice: Mapped[str] = mapped_column(String(16))
    """The format picked for the reader: the preset's, `source` (the source's), or for a preset
    of format `auto` one of `avif`, `webp`, `fallback` (JPEG, or PNG with alpha)."""
    task_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("tasks.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
