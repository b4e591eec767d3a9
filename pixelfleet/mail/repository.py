"""All SQL about the mail outbox (its attempts are claimed and settled as every outbox's:
`pixelfleet/outbox_attempts.py`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.models import OutboundMail
from pixelfleet.outbox_attempts import PENDING, claim_attempt, settle_attempt

SENT = "sent"
FAILED = "failed"


@dataclass(frozen=True)
class DueLetter:
    """What a sender needs of one letter, read before it is claimed."""

    id: uuid.UUID
    kind: str
    to: str
    subject: str
    text: str
    html: str
    attempts: int
    created_at: datetime


class MailRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> MailRepository:
        return cls(session)

    async def add(self, mail: OutboundMail) -> None:
        self.session.add(mail)
        await self.session.flush()

    async def delete_settled_before(self, cutoff: datetime) -> int:
        """Forgets letters that went or were given up, written before `cutoff`."""
        result = await self.session.execute(
            delete(OutboundMail).where(
                OutboundMail.state != PENDING, OutboundMail.created_at < cutoff
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def due(self, now: datetime, limit: int, mail_id: uuid.UUID | None) -> list[DueLetter]:
        statement = (
            select(OutboundMail)
            .where(OutboundMail.state == PENDING, OutboundMail.next_attempt_at <= now)
            .order_by(OutboundMail.next_attempt_at)
            .limit(limit)
        )
        if mail_id is not None:
            statement = statement.where(OutboundMail.id == mail_id)
        return [
            DueLetter(
                mail.id,
                mail.kind,
                mail.to_address,
                mail.subject,
                mail.text_body or "",
                mail.html_body or "",
                mail.attempts,
                mail.created_at,
            )
            for mail in (await self.session.scalars(statement)).all()
        ]

    async def claim(
        self, mail_id: uuid.UUID, attempts: int, now: datetime, lease_until: datetime
    ) -> bool:
        """Takes the next attempt of a due letter (`outbox_attempts.claim_attempt`)."""
        return await claim_attempt(self.session, OutboundMail, mail_id, attempts, now, lease_until)

    async def _settle(self, mail_id: uuid.UUID, attempts: int, **values: Any) -> bool:
        return await settle_attempt(self.session, OutboundMail, mail_id, attempts, **values)

    async def mark_sent(self, mail_id: uuid.UUID, attempts: int, now: datetime) -> bool:
        # Its bodies go: they carry single-use links, and nobody needs them any more.
        return await self._settle(
            mail_id,
            attempts,
            state=SENT,
            sent_at=now,
            next_attempt_at=None,
            last_error=None,
            text_body=None,
            html_body=None,
        )

    async def schedule_retry(
        self, mail_id: uuid.UUID, attempts: int, error: str, next_attempt_at: datetime
    ) -> bool:
        return await self._settle(
            mail_id, attempts, last_error=error, next_attempt_at=next_attempt_at
        )

    async def mark_given_up(self, mail_id: uuid.UUID, attempts: int, error: str) -> bool:
        return await self._settle(
            mail_id,
            attempts,
            state=FAILED,
            last_error=error,
            next_attempt_at=None,
            text_body=None,
            html_body=None,
        )
