"""The mail outbox. A letter is written in the transaction that makes it due (`queue_letter`)
and, once that commits, sent from the process that wrote it, in the background; the sweep (the
embedded scheduler, Celery beat's `pixelfleet.send_mail`) sends what that misses and the
retries, with backoff, until `PIXELFLEET_MAIL_MAX_ATTEMPTS`. A mail server's outage delays
letters and loses none.

Each attempt is claimed (and committed) before the letter goes, with a lease, so two senders
never send the same attempt; a sender that dies mid-attempt is replaced when its lease ends (and
that letter may then go twice: at least once, as mail is everywhere). Each recorded attempt is
counted in `pixelfleet_mail_attempts_total` by kind and outcome."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.background_sends import backoff
from pixelfleet.context import ProcessContext
from pixelfleet.db import after_commit, utcnow
from pixelfleet.mail.letters import Letter
from pixelfleet.mail.repository import DueLetter, MailRepository
from pixelfleet.mail.senders import MailNotSent, compose
from pixelfleet.models import OutboundMail
from pixelfleet.observability.metrics import MAIL_ATTEMPTS

log = logging.getLogger(__name__)

SENT_OUTCOME = "sent"
RETRYING_OUTCOME = "retrying"
FAILED_OUTCOME = "failed"
MAIL_OUTCOMES = (SENT_OUTCOME, RETRYING_OUTCOME, FAILED_OUTCOME)

FIRST_RETRY_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 3600.0
# Beyond the server's own timeout: time to record the outcome before another sender may retry.
LEASE_MARGIN_SECONDS = 30.0
MAX_ERROR_LENGTH = 500


async def queue_letter(session: AsyncSession, letter: Letter, user_id: uuid.UUID | None) -> None:
    """Writes `letter` to the outbox in the session's transaction; it is sent once that
    commits."""
    mail = OutboundMail(
        user_id=user_id,
        kind=letter.kind,
        to_address=letter.to,
        subject=letter.subject,
        text_body=letter.text,
        html_body=letter.html,
        next_attempt_at=utcnow(),
    )
    await MailRepository.from_session(session).add(mail)
    mail_id = mail.id

    async def send_now(ctx: ProcessContext) -> None:
        ctx.mail.start(mail_id)

    after_commit(session, send_now)


async def forget_settled_mail(session: AsyncSession, before: datetime) -> int:
    """Deletes the letters that went or were given up, written before `before`."""
    return await MailRepository.from_session(session).delete_settled_before(before)


async def send_due_mail(ctx: ProcessContext, *, mail_id: uuid.UUID | None = None) -> int:
    """Makes the next attempt of every letter that is due (only `mail_id`, when given), one
    after another, until one does not go: a server that is away now is away for the rest of
    this sweep, and the sweep shares its loop with other upkeep. Returns how many attempts
    this call made."""
    async with ctx.read_sessions() as session:
        due = await MailRepository.from_session(session).due(utcnow(), 50, mail_id)
    made = 0
    for letter in due:
        outcome = await _attempt(ctx, letter)
        if outcome is not None:
            made += 1
        if outcome is not None and outcome != SENT_OUTCOME:
            break
    return made


async def _attempt(ctx: ProcessContext, letter: DueLetter) -> str | None:
    """The outcome of this sender's attempt at `letter`; None if another sender claimed it."""
    now = utcnow()
    lease = timedelta(seconds=ctx.settings.smtp_timeout_seconds + LEASE_MARGIN_SECONDS)
    async with ctx.sessions.begin() as session:
        claimed = await MailRepository.from_session(session).claim(
            letter.id, letter.attempts, now, now + lease
        )
    if not claimed:
        return None
    attempt = letter.attempts + 1
    message = compose(
        Letter(letter.kind, letter.to, letter.subject, letter.text, letter.html),
        ctx.settings.mail_from,
        letter.id,
        letter.created_at,
    )
    try:
        # The whole exchange, within its lease: a server answering each command slowly would
        # otherwise outlast it, and another sender would send the letter again.
        async with asyncio.timeout(ctx.settings.smtp_timeout_seconds):
            await ctx.mail_sender.send(message)
    except (MailNotSent, TimeoutError) as exc:
        error = str(exc) or f"no answer within {ctx.settings.smtp_timeout_seconds} s"
        return await _failed(ctx, letter, attempt, error[:MAX_ERROR_LENGTH])
    async with ctx.sessions.begin() as session:
        if await MailRepository.from_session(session).mark_sent(letter.id, attempt, utcnow()):
            MAIL_ATTEMPTS.labels(letter.kind, SENT_OUTCOME).inc()
    return SENT_OUTCOME


async def _failed(ctx: ProcessContext, letter: DueLetter, attempt: int, error: str) -> str:
    given_up = attempt >= ctx.settings.mail_max_attempts
    async with ctx.sessions.begin() as session:
        repo = MailRepository.from_session(session)
        if given_up:
            recorded = await repo.mark_given_up(letter.id, attempt, error)
        else:
            delay = backoff(FIRST_RETRY_SECONDS, attempt, MAX_BACKOFF_SECONDS)
            recorded = await repo.schedule_retry(letter.id, attempt, error, utcnow() + delay)
    if not recorded:
        return FAILED_OUTCOME if given_up else RETRYING_OUTCOME
    if given_up:
        MAIL_ATTEMPTS.labels(letter.kind, FAILED_OUTCOME).inc()
        log.warning(
            "mail %s (%s) to %s given up after %d attempts: %s",
            letter.id,
            letter.kind,
            letter.to,
            attempt,
            error,
        )
    else:
        MAIL_ATTEMPTS.labels(letter.kind, RETRYING_OUTCOME).inc()
        log.info("mail %s (%s): attempt %d failed: %s", letter.id, letter.kind, attempt, error)
    return FAILED_OUTCOME if given_up else RETRYING_OUTCOME
