"""`pixelfleet_webhook_deliveries_total{outcome}` counts each attempt of a task's callback
webhook by its recorded outcome: `delivered`, `retrying` (another attempt is scheduled),
`failed` (no attempts left) or `refused` (not a public target); an attempt whose outcome could
not be recorded is not counted."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from prometheus_client import REGISTRY

from pixelfleet.bootstrap import create_context
from pixelfleet.context import ProcessContext
from pixelfleet.db import utcnow
from pixelfleet.webhooks import delivery as webhook_delivery
from pixelfleet.webhooks.delivery import deliver_due
from pixelfleet.webhooks.repository import WebhookDeliveryRepository
from tests.api_helpers import sign_up
from tests.webhooks import conftest as webhooks_suite
from tests.webhooks.receiver import Receiver
from tests.webhooks.steps import (
    deliver_until_settled,
    deliveries_of,
    finish_queued_tasks,
    submit_with_callback,
)

# The webhook suite's fixtures: a receiver on a loopback port, settings that allow it as a
# target, with a short backoff and three attempts.
receiver = webhooks_suite.receiver
settings = webhooks_suite.settings

OUTCOMES = ("delivered", "retrying", "failed", "refused")


def counted() -> dict[str, float]:
    return {
        outcome: REGISTRY.get_sample_value(
            "pixelfleet_webhook_deliveries_total", {"outcome": outcome}
        )
        or 0.0
        for outcome in OUTCOMES
    }


def counted_since(before: dict[str, float]) -> dict[str, float]:
    """What was counted since `before`, by outcome, leaving out the outcomes that did not move."""
    now = counted()
    return {o: now[o] - before[o] for o in OUTCOMES if now[o] != before[o]}


async def _finished_task(
    client: httpx.AsyncClient, ctx: ProcessContext, headers: dict[str, str], callback_url: str
) -> str:
    """Submits a task and runs it to its end; its event's first attempt is made by then."""
    response = await submit_with_callback(client, headers, callback_url)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    assert await finish_queued_tasks(ctx) == ["succeeded"]
    return task_id


async def test_a_receiver_that_fails_twice_then_answers_counts_two_retries_and_a_delivery(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    headers = await sign_up(client, "flaky@example.com")
    receiver.answer(500, times=2)
    before = counted()

    task_id = await _finished_task(client, ctx, headers, receiver.url)
    assert counted_since(before) == {"retrying": 1}
    delivery = await deliver_until_settled(ctx, client, headers, task_id)

    assert (delivery["state"], delivery["attempts"]) == ("delivered", 3)
    assert counted_since(before) == {"retrying": 2, "delivered": 1}
    assert await deliver_due(ctx) == 0
    assert counted_since(before) == {"retrying": 2, "delivered": 1}


async def test_a_receiver_that_answers_at_once_counts_one_delivery(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    headers = await sign_up(client, "prompt@example.com")
    before = counted()

    await _finished_task(client, ctx, headers, receiver.url)

    assert len(receiver.requests) == 1
    assert counted_since(before) == {"delivered": 1}


async def test_a_receiver_that_never_answers_well_counts_the_retries_then_one_failure(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    headers = await sign_up(client, "down@example.com")
    receiver.answer(503, times=100)
    before = counted()

    task_id = await _finished_task(client, ctx, headers, receiver.url)
    delivery = await deliver_until_settled(ctx, client, headers, task_id)

    assert ctx.settings.webhook_max_attempts == 3
    assert (delivery["state"], delivery["attempts"]) == ("failed", 3)
    assert counted_since(before) == {"retrying": 2, "failed": 1}


async def test_a_private_target_counts_one_refusal_and_no_retry(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    headers = await sign_up(client, "inside@example.com")
    # Submitted while private targets were allowed; the operator has switched them off since.
    response = await submit_with_callback(client, headers, receiver.url)
    assert response.status_code == 202, response.text
    ctx.settings.webhook_allow_private_targets = False
    before = counted()

    assert await finish_queued_tasks(ctx) == ["succeeded"]
    [delivery] = await deliveries_of(client, headers, response.json()["id"])
    assert (delivery["state"], delivery["attempts"]) == ("refused", 1)
    await asyncio.sleep(0.1)  # longer than the backoff: a retry would be due by now
    assert await deliver_due(ctx) == 0

    assert receiver.requests == []
    assert counted_since(before) == {"refused": 1}


@pytest.mark.both_backends
async def test_a_last_attempt_that_never_reported_back_is_counted_as_failed_once(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    """Two senders claimed the second and the third attempt and died without a word: when the
    last lease ends, the sweep gives the delivery up, and counts that failure once."""
    headers = await sign_up(client, "vanished@example.com")
    receiver.answer(500)
    task_id = await _finished_task(client, ctx, headers, receiver.url)
    [pending] = await deliveries_of(client, headers, task_id)
    await asyncio.sleep(0.05)  # the retry comes due (the backoff is 10 ms here)
    for attempts in (1, 2):
        async with ctx.sessions.begin() as session:
            # Claimed with a lease that has already ended, by a sender that dies at once.
            assert await WebhookDeliveryRepository.from_session(session).claim(
                uuid.UUID(pending["id"]), attempts, utcnow(), utcnow()
            )
    before = counted()

    made = await asyncio.gather(deliver_due(ctx), deliver_due(ctx))

    assert sum(made) == 0  # no attempt is made: the last one was spent
    [delivery] = await deliveries_of(client, headers, task_id)
    assert (delivery["state"], delivery["attempts"]) == ("failed", 3)
    assert len(receiver.requests) == 1
    assert counted_since(before) == {"failed": 1}


@pytest.mark.both_backends
async def test_an_attempt_recorded_after_its_lease_ran_out_is_not_counted(
    client: httpx.AsyncClient,
    ctx: ProcessContext,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slow attempt outlives its lease and a second sender makes the next attempt: both
    requests reach the receiver, only the second sender's outcome is recorded, and only it is
    counted."""
    headers = await sign_up(client, "slow@example.com")
    receiver.answer(500)
    task_id = await _finished_task(client, ctx, headers, receiver.url)
    await asyncio.sleep(0.05)  # the retry comes due
    before = counted()

    lease = 0.1
    monkeypatch.setattr(
        webhook_delivery, "LEASE_MARGIN_SECONDS", lease - ctx.settings.webhook_timeout_seconds
    )
    receiver.delay_seconds = 0.6
    other = create_context(ctx.settings)  # a second sender, as in another process
    try:
        first = asyncio.create_task(deliver_due(ctx))
        await asyncio.sleep(lease + 0.2)  # the first attempt's lease ends while it waits
        second = asyncio.create_task(deliver_due(other))
        assert await asyncio.gather(first, second) == [1, 1]
    finally:
        await other.close()

    assert len(receiver.requests) == 3
    [delivery] = await deliveries_of(client, headers, task_id)
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 3)
    assert counted_since(before) == {"delivered": 1}
