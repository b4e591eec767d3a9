"""Sending due webhook deliveries: claim an attempt, POST the signed event, record the outcome.

Each attempt is claimed (and committed) before the request goes out, with a lease: two senders
never make the same attempt, and a sender that dies mid-attempt is replaced when the lease ends.
A receiver that has our request but whose answer we lost sees the event again, with the same
`PixelFleet-Delivery` id, so it can drop the duplicate.

Each attempt whose outcome is recorded is counted in `pixelfleet_webhook_deliveries_total` once
that record is committed: `delivered`, `retrying` (another attempt is scheduled), `failed` (no
attempts left) or `refused` (not a public target). An attempt recorded too late (its lease had
run out) is not counted: the sender that took the delivery over counts its own attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from pixelfleet.background_sends import backoff
from pixelfleet.context import ProcessContext
from pixelfleet.db import utcnow
from pixelfleet.observability.metrics import WEBHOOK_DELIVERIES
from pixelfleet.outbound import outbound_client
from pixelfleet.settings import Settings
from pixelfleet.webhooks.repository import (
    FAILED,
    REFUSED,
    DueDelivery,
    WebhookDeliveryRepository,
)
from pixelfleet.webhooks.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    signature_header,
    signing_secrets,
)
from pixelfleet.webhooks.targets import TargetRefused, delivery_target

log = logging.getLogger(__name__)

USER_AGENT = "PixelFleet-Webhooks/1.0"
MAX_BACKOFF_SECONDS = 3600.0
# Beyond the request's own timeout: time to record the outcome before someone else may retry.
LEASE_MARGIN_SECONDS = 30.0
CONCURRENT_SENDS = 8
MAX_ERROR_LENGTH = 500

DELIVERED_OUTCOME = "delivered"
RETRYING_OUTCOME = "retrying"
FAILED_OUTCOME = "failed"
REFUSED_OUTCOME = "refused"
DELIVERY_OUTCOMES = (DELIVERED_OUTCOME, RETRYING_OUTCOME, FAILED_OUTCOME, REFUSED_OUTCOME)


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    error: str | None  # None: delivered
    refused: bool = False


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    """How long to wait after failed attempt number `attempts`: doubling from the configured
    backoff, capped at an hour (`background_sends.backoff`)."""
    return backoff(settings.webhook_backoff_seconds, attempts, MAX_BACKOFF_SECONDS)


def webhook_client(settings: Settings) -> httpx.AsyncClient:
    """An HTTP client for webhooks (`pixelfleet.outbound`: no redirects, no proxies or .netrc
    from the environment, no kept-alive connections)."""
    return outbound_client(settings.webhook_timeout_seconds)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _body_of(delivery: DueDelivery) -> bytes:
    return json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode("utf-8")


async def _send(
    settings: Settings, http: httpx.AsyncClient, delivery: DueDelivery, now: datetime | None
) -> AttemptResult:
    timeout = settings.webhook_timeout_seconds
    try:
        async with asyncio.timeout(timeout):
            target = await delivery_target(
                delivery.url, allow_private_targets=settings.webhook_allow_private_targets
            )
    except TargetRefused as exc:
        return AttemptResult(None, f"refused: {exc}", refused=True)
    except TimeoutError:
        return AttemptResult(None, f"could not resolve the callback host within {timeout:g} s")
    except OSError as exc:
        return AttemptResult(None, f"could not resolve the callback host ({_describe(exc)})")
    body = _body_of(delivery)
    sent_at = now or utcnow()
    secrets = signing_secrets(settings, delivery.user_id, delivery.salts, sent_at)
    signature = signature_header(
        secrets.current, body, int(sent_at.timestamp()), previous=secrets.previous
    )
    headers = {
        **target.headers,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: delivery.event,
        DELIVERY_HEADER: str(delivery.id),
        SIGNATURE_HEADER: signature,
    }
    extensions = target.extensions
    try:
        # The whole exchange is bounded, not each read: a receiver that trickles bytes is cut off.
        async with (
            asyncio.timeout(timeout),
            http.stream(
                "POST",
                target.url,
                content=body,
                headers=headers,
                follow_redirects=False,
                timeout=timeout,
                extensions=extensions,
            ) as response,
        ):
            status, location = response.status_code, response.headers.get("location")
    except TimeoutError:
        return AttemptResult(None, f"no answer within {timeout:g} seconds")
    except httpx.HTTPError as exc:
        return AttemptResult(None, _describe(exc))
    if 200 <= status < 300:
        return AttemptResult(status, None)
    if 300 <= status < 400:
        where = f" to {location}" if location else ""
        return AttemptResult(
            status, f"answered {status}, a redirect{where}; redirects are not followed"
        )
    return AttemptResult(status, f"answered HTTP {status}")


async def _claim(ctx: ProcessContext, delivery: DueDelivery, at: datetime | None) -> bool:
    now = at or utcnow()
    lease = timedelta(seconds=ctx.settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS)
    async with ctx.sessions.begin() as session:
        return await WebhookDeliveryRepository.from_session(session).claim(
            delivery.id, delivery.attempts, now, now + lease
        )


async def _record(
    ctx: ProcessContext, delivery: DueDelivery, attempt: int, result: AttemptResult
) -> None:
    settings = ctx.settings
    now = utcnow()
    error = result.error[:MAX_ERROR_LENGTH] if result.error else None
    async with ctx.sessions.begin() as session:
        repo = WebhookDeliveryRepository.from_session(session)
        if error is None:
            assert result.status_code is not None
            outcome = DELIVERED_OUTCOME
            settled = await repo.mark_delivered(delivery.id, attempt, result.status_code, now)
        elif result.refused:
            outcome = REFUSED_OUTCOME
            settled = await repo.mark_given_up(delivery.id, attempt, REFUSED, None, error, now)
        elif attempt >= settings.webhook_max_attempts:
            outcome = FAILED_OUTCOME
            settled = await repo.mark_given_up(
                delivery.id, attempt, FAILED, result.status_code, error, now
            )
        else:
            outcome = RETRYING_OUTCOME
            settled = await repo.schedule_retry(
                delivery.id,
                attempt,
                result.status_code,
                error,
                now,
                now + retry_delay(settings, attempt),
            )
    if not settled:
        log.warning(
            "webhook %s: attempt %d ended after its lease; its outcome was not recorded",
            delivery.id,
            attempt,
        )
        return
    # Counted only now that the block above has committed the outcome (it raises otherwise).
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
    if error is None:
        log.info("webhook %s for task %s delivered", delivery.id, delivery.task_id)
    else:
        log.info(
            "webhook %s for task %s: attempt %d failed: %s",
            delivery.id,
            delivery.task_id,
            attempt,
            error,
        )


async def _give_up_exhausted(ctx: ProcessContext, delivery: DueDelivery, now: datetime) -> None:
    """Ends a delivery whose last attempt was claimed by a sender that never reported back.
    That attempt is counted here, as the one that failed for good."""
    async with ctx.sessions.begin() as session:
        ended = await WebhookDeliveryRepository.from_session(session).mark_given_up(
            delivery.id,
            delivery.attempts,
            FAILED,
            None,
            f"gave up after {delivery.attempts} attempts (the last one never reported back)",
            now,
        )
    if ended:
        WEBHOOK_DELIVERIES.labels(outcome=FAILED_OUTCOME).inc()


async def _attempt(
    ctx: ProcessContext, http: httpx.AsyncClient, delivery: DueDelivery, now: datetime | None
) -> bool:
    """Makes the next attempt of one delivery, if this sender wins its claim. Never raises."""
    try:
        if delivery.attempts >= ctx.settings.webhook_max_attempts:
            await _give_up_exhausted(ctx, delivery, utcnow())
            return False
        if not await _claim(ctx, delivery, now):
            return False
    except Exception:
        log.exception("webhook %s: could not claim an attempt", delivery.id)
        return False
    attempt = delivery.attempts + 1
    try:
        result = await _send(ctx.settings, http, delivery, now)
    except Exception as exc:
        log.exception("webhook %s: attempt %d broke", delivery.id, attempt)
        result = AttemptResult(None, f"internal error: {type(exc).__name__}")
    try:
        await _record(ctx, delivery, attempt, result)
    except Exception:
        # The lease ends and the delivery is tried again, as if this sender had died.
        log.exception("webhook %s: could not record attempt %d", delivery.id, attempt)
    return True


async def deliver_due(
    ctx: ProcessContext,
    *,
    task_id: uuid.UUID | None = None,
    limit: int = 50,
    http: httpx.AsyncClient | None = None,
    now: datetime | None = None,
) -> int:
    """Makes the next attempt of every delivery that is due (only those of `task_id`, when
    given; at most `limit`), a few at a time. Returns how many attempts this call made: a
    delivery that another sender claimed first is not counted. `now` is the moment the sender
    acts at (the clock's, each time it is read, by default): what is due, the claim, the
    signature's time and which secrets sign."""
    async with ctx.read_sessions() as session:
        due = await WebhookDeliveryRepository.from_session(session).due(
            now or utcnow(), limit, task_id
        )
    if not due:
        return 0
    gate = asyncio.Semaphore(CONCURRENT_SENDS)
    async with contextlib.AsyncExitStack() as stack:
        client: httpx.AsyncClient = (
            http
            if http is not None
            else await stack.enter_async_context(webhook_client(ctx.settings))
        )

        async def attempt(delivery: DueDelivery) -> bool:
            async with gate:
                return await _attempt(ctx, client, delivery, now)

        made = await asyncio.gather(*(attempt(d) for d in due))
    return sum(made)
