from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from pixelfleet.db import Base, UTCDateTime, utcnow


class Upload(Base):
    """A direct upload: where a client sends an image's bytes (to storage, bypassing the API
    where the storage allows it) before naming it as a task's source (`{"upload": id}`)."""

    __tablename__ = "uploads"
    __table_args__ = (
        Index("ix_uploads_user_created", "user_id", "created_at", "id"),
        # The upkeep deletes the bytes of uploads past their time.
        Index("ix_uploads_expires", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(Integer)
    """The declared size: the bytes sent must be exactly this many."""
    token_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 (hex) of the token of `PUT /v1/uploads/{id}/content`; the token is never stored."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When the API received the bytes (a PUT to storage itself is seen only when used)."""
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
