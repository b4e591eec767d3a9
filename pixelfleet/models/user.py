from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from pixelfleet.db import Base, UTCDateTime, utcnow


class User(Base):
    """An account. Its webhook signing secret is derived from the server key and a salt kept
    here (`pixelfleet.webhooks.signing`), so the database holds no usable secret: a NULL salt is
    the secret every account started with. Rotating it keeps the previous salt, which still signs
    until `webhook_secret_previous_until`."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="user")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    balance: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    webhook_secret_salt: Mapped[str | None] = mapped_column(String(64), nullable=True)
    webhook_secret_previous_salt: Mapped[str | None] = mapped_column(String(64), nullable=True)
    webhook_secret_previous_until: Mapped[datetime | None] = mapped_column(
        UTCDateTime, nullable=True
    )
    # Counts the times every login of the account was ended at once (deactivation, and any
    # change of credentials): a token carries the epoch it was issued in and works only while it
    # is still the account's. A counter, not a time: a token issued in the same second as the
    # change is refused too.
    credential_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # What the account's delivery key (signing its derivative URLs) is derived from, with the
    # server's key; None: the key every account starts with. A new salt ends every URL before.
    delivery_key_salt: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # When the account proved it receives mail at its address (a mailed link); None: not yet.
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When the account was erased (`pixelfleet.privacy.erasure`): the row stays, anonymised,
    # for the payments and ledger lines kept for accounting; nothing else of it is left.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
