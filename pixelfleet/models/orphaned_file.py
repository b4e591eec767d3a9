from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from pixelfleet.db import Base, UTCDateTime, utcnow


class OrphanedFile(Base):
    """A stored file whose rows are gone (an erased account's): noted in the transaction that
    deleted them, deleted after it commits, and by the upkeep until the storage has let it go."""

    __tablename__ = "orphaned_files"

    key: Mapped[str] = mapped_column(String(1024), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
