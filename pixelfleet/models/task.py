from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from pixelfleet.db import Base, UTCDateTime, utcnow
from pixelfleet.jobs.states import QUEUED
from pixelfleet.models.task_output import TaskOutput

HELD = "status = 'queued' AND dispatched_at IS NULL"
HANDED_OUT = "status = 'queued' AND dispatched_at IS NOT NULL"


class Task(Base):
    """One image task: its source, pipeline, state, progress and result."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_user_created", "user_id", "created_at", "id"),
        Index("ix_tasks_status_created", "status", "created_at"),
        # A user's active tasks are counted at every submission (max_active_tasks_per_user).
        Index("ix_tasks_user_status", "user_id", "status"),
        # Fair sharing (jobs/fair_dispatch.py): tasks waiting their turn, by queue and account,
        # and tasks handed out but not started (counted at each submission and start).
        Index(
            "ix_tasks_held",
            "queue",
            "user_id",
            "priority",
            "created_at",
            sqlite_where=text(HELD),
            postgresql_where=text(HELD),
        ),
        Index(
            "ix_tasks_handed_out",
            "dispatched_at",
            sqlite_where=text(HANDED_OUT),
            postgresql_where=text(HANDED_OUT),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("api_keys.id", ondelete="SET NULL"), nullable=True, index=True
    )
    """The API key that submitted the task; None for an interactive login, for a task made by
    reading a derivative URL, and once the key is deleted."""
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cost: Mapped[int] = mapped_column(Integer)
    pipeline: Mapped[dict[str, Any]] = mapped_column(JSON)

    source_key: Mapped[str] = mapped_column(String(255))
    source_kind: Mapped[str] = mapped_column(String(8), default="file", server_default="file")
    """How the image came: `file` (uploaded with the task), `url`, `upload`, `task` or `asset`."""
    source_ref: Mapped[str | None] = mapped_column(Text, nullable=True)
    """What the submission named: the URL of a `url` source, the id of an `upload`, `task` or
    `asset` (None for a `file`)."""
    source_format: Mapped[str] = mapped_column(String(16))
    source_width: Mapped[int] = mapped_column(Integer)
    source_height: Mapped[int] = mapped_column(Integer)
    source_bytes: Mapped[int] = mapped_column(Integer)

    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)

    callback_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)

    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When the task was last handed to the launcher; a queued task silent since then is resent.
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    files_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    queue: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The worker queue the task is sent to; None: the sending process's own."""
    priority: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    """0-9: within its queue, a higher priority is taken first."""
    budget: Mapped[str | None] = mapped_column(String(320), nullable=True, index=True)
    """The budget the task was admitted under (a CreditBinding's `namespace/name`)."""
    resource_name: Mapped[str | None] = mapped_column(String(320), nullable=True)
    """The `namespace/name` of the resource that asked for the task, when it was not made by
    PixelFleet (an ImageJob applied with kubectl); None: the task's own `task-<id>`."""
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """Past this, the task fails (`deadline-exceeded`) wherever it is."""
    max_attempts: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """At most this many attempts (None: the service's own limit)."""

    outputs: Mapped[list[TaskOutput]] = relationship(
        order_by="TaskOutput.position", lazy="selectin", cascade="all, delete-orphan"
    )
