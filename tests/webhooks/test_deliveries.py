"""A finished task's event reaches its callback URL: sent by itself when the task ends, signed,
retried with backoff by the sweep, given up after the last attempt, never sent twice for one
attempt, and listed for its owner."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from pixelfleet.bootstrap import create_context
from pixelfleet.context import ProcessContext
from pixelfleet.jobs import maintenance
from pixelfleet.jobs.processing import process_task
from pixelfleet.models import Task
from pixelfleet.webhooks import service as webhooks_service
from pixelfleet.webhooks.delivery import deliver_due
from pixelfleet.webhooks.repository import DueDelivery, WebhookDeliveryRepository
from pixelfleet.webhooks.sender import BackgroundWebhookSender
from pixelfleet.webhooks.service import record_task_event
from pixelfleet.webhooks.signing import verify_signature
from pixelfleet.worker.embedded import drain_queue, run_scheduler
from tests.api_helpers import PROBLEM, balance_of, noise_png, sign_up, truncated_jpeg
from tests.harness.ports import free_port
from tests.records import claim_an_hour_ago
from tests.webhooks.receiver import Receiver
from tests.webhooks.steps import (
    SETTLE_SECONDS,
    deliver_until_settled,
    deliveries_of,
    finish_queued_tasks,
    record_final_event,
    sends_settled,
    submit_with_callback,
)


async def _finished_task(
    client: httpx.AsyncClient,
    ctx: ProcessContext,
    headers: dict[str, str],
    callback_url: str,
    image: bytes | None = None,
) -> str:
    """Submits a task and runs it to its end; its event's first attempt is made by then."""
    response = await submit_with_callback(client, headers, callback_url, image=image)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    await finish_queued_tasks(ctx)
    return task_id


async def _secret_of(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await client.get("/v1/me/webhook-secret", headers=headers)
    assert response.status_code == 200, response.text
    secret: str = response.json()["secret"]
    return secret


def _events_received(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.requests]


async def test_a_finished_task_sends_its_event_without_being_asked(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    """The worker that finishes the task records its event in the same transaction and starts
    sending it right after the commit: no sweep, no call of the sender needed."""
    headers = await sign_up(client, "auto@example.com")
    submitted = await submit_with_callback(client, headers, f"{receiver.url}/hook")
    task_id = submitted.json()["id"]

    assert await drain_queue(ctx) == ["succeeded"]
    assert isinstance(ctx.webhooks, BackgroundWebhookSender)
    await ctx.webhooks.settle()

    [request] = receiver.requests
    assert (request.path, request.headers["pixelfleet-event"]) == ("/hook", "task.succeeded")
    assert json.loads(request.body)["data"]["task"]["id"] == task_id
    [delivery] = await deliveries_of(client, headers, task_id)
    assert (delivery["state"], delivery["attempts"], delivery["last_status_code"]) == (
        "delivered",
        1,
        200,
    )
    assert await deliver_due(ctx) == 0  # nothing is left for the sweep
    assert len(receiver.requests) == 1


async def test_a_finished_task_posts_one_event_signed_with_the_owners_secret(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    headers = await sign_up(client, "hook@example.com")
    described = await client.get("/v1/me/webhook-secret", headers=headers)
    assert described.headers["cache-control"] == "no-store"
    assert described.json()["signature_header"] == "PixelFleet-Signature"
    assert described.json()["scheme"] == "t=<unix>,v1=<hex hmac-sha256 of '<t>.<body>'>"
    secret = described.json()["secret"]
    callback = f"{receiver.url}/hooks/pixelfleet?source=test"

    submitted = await submit_with_callback(client, headers, callback)
    assert submitted.json()["callback_url"] == callback
    task_id = submitted.json()["id"]
    assert await finish_queued_tasks(ctx) == ["succeeded"]

    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/hooks/pixelfleet?source=test")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["pixelfleet-event"] == "task.succeeded"
    assert verify_signature(secret, request.headers["pixelfleet-signature"], request.body)
    assert not verify_signature(
        secret, request.headers["pixelfleet-signature"], request.body + b" "
    )
    other = await _secret_of(client, await sign_up(client, "other@example.com"))
    assert other != secret
    assert not verify_signature(other, request.headers["pixelfleet-signature"], request.body)

    event = json.loads(request.body)
    assert event["id"] == request.headers["pixelfleet-delivery"]
    assert event["type"] == "task.succeeded"
    task = event["data"]["task"]
    shown = (await client.get(f"/v1/tasks/{task_id}", headers=headers)).json()
    assert task["id"] == task_id
    assert (task["status"], task["cost"], task["error"]) == ("succeeded", shown["cost"], None)
    assert task["finished_at"] == shown["finished_at"]
    assert task["links"] == shown["links"]
    assert task["outputs"] == [
        {k: o[k] for k in ("name", "format", "width", "height", "bytes")} for o in shown["outputs"]
    ]
    assert (task["outputs"][0]["format"], task["outputs"][0]["width"]) == ("png", 64)

    [delivery] = await deliveries_of(client, headers, task_id)
    assert delivery["id"] == event["id"]
    assert (delivery["state"], delivery["attempts"], delivery["last_status_code"]) == (
        "delivered",
        1,
        200,
    )
    assert delivery["delivered_at"] is not None
    assert delivery["next_attempt_at"] is None
    assert delivery["payload"] == event

    # Recording the event again (as a second recorder would) is harmless: it is there once.
    await record_final_event(ctx, task_id)
    assert await deliver_due(ctx) == 0
    assert len(receiver.requests) == 1
    assert len(await deliveries_of(client, headers, task_id)) == 1


async def test_a_failed_task_sends_its_own_event_without_being_asked(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    headers = await sign_up(client, "broken@example.com")
    submitted = await submit_with_callback(client, headers, receiver.url, image=truncated_jpeg())
    task_id = submitted.json()["id"]
    assert await finish_queued_tasks(ctx) == ["failed"]

    [event] = _events_received(receiver)
    assert event["type"] == "task.failed"
    task = event["data"]["task"]
    assert (task["id"], task["status"]) == (task_id, "failed")
    assert task["error"]["code"]
    assert task["outputs"] == []
    [delivery] = await deliveries_of(client, headers, task_id)
    assert (delivery["event"], delivery["state"], delivery["attempts"]) == (
        "task.failed",
        "delivered",
        1,
    )


async def test_cancelling_a_task_sends_its_event_without_being_asked(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    """The cancel request records the event and starts sending it once its answer is
    committed."""
    headers = await sign_up(client, "ends@example.com")
    queued = await submit_with_callback(client, headers, receiver.url)
    task_id = queued.json()["id"]

    cancelled = await client.delete(f"/v1/tasks/{task_id}", headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    await sends_settled(ctx)

    [event] = _events_received(receiver)
    assert event["type"] == "task.cancelled"
    assert (event["data"]["task"]["id"], event["data"]["task"]["status"]) == (
        task_id,
        "cancelled",
    )
    [delivery] = await deliveries_of(client, headers, task_id)
    assert (delivery["event"], delivery["state"], delivery["attempts"]) == (
        "task.cancelled",
        "delivered",
        1,
    )
    assert await finish_queued_tasks(ctx) == []
    assert len(receiver.requests) == 1


async def test_a_task_cancelled_while_running_sends_only_its_cancellation(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    """The worker that finishes afterwards discards its results, and sends no success."""
    headers = await sign_up(client, "quit@example.com")
    slow = '{"operations": [{"op": "rotate", "angle": 33}], "output": {"format": "avif"}}'
    submitted = await submit_with_callback(
        client, headers, receiver.url, image=noise_png((1400, 1400)), pipeline=slow
    )
    assert submitted.status_code == 202, submitted.text
    task_id = submitted.json()["id"]
    running = asyncio.create_task(process_task(ctx, uuid.UUID(task_id), "busy-worker"))
    for _ in range(1000):
        shown = await client.get(f"/v1/tasks/{task_id}", headers=headers)
        if shown.json()["status"] == "running":
            break
        await asyncio.sleep(0.01)

    cancelled = await client.delete(f"/v1/tasks/{task_id}", headers=headers)
    assert cancelled.json()["status"] == "cancelled"
    assert await running == "discarded"
    await sends_settled(ctx)

    assert [e["type"] for e in _events_received(receiver)] == ["task.cancelled"]
    assert [d["event"] for d in await deliveries_of(client, headers, task_id)] == ["task.cancelled"]


async def test_a_task_failed_by_the_recovery_of_lost_workers_sends_its_event_without_being_asked(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    """Upkeep settles a task as any other end does: its event is recorded in the transaction
    that fails the task, and its first attempt starts once that commits, not at the next sweep."""
    headers = await sign_up(client, "lost@example.com")
    submitted = await submit_with_callback(client, headers, receiver.url)
    task_id = submitted.json()["id"]
    for attempt in range(ctx.settings.task_max_attempts):
        await claim_an_hour_ago(ctx, task_id, f"worker-{attempt}")
        assert await maintenance.recover_stale_tasks(ctx) == 1
    await sends_settled(ctx)

    [event] = _events_received(receiver)
    assert event["type"] == "task.failed"
    assert event["data"]["task"]["error"]["code"] == "worker-lost"
    [delivery] = await deliveries_of(client, headers, task_id)
    assert (delivery["event"], delivery["state"], delivery["attempts"]) == (
        "task.failed",
        "delivered",
        1,
    )
    assert await deliver_due(ctx) == 0


async def test_a_task_failed_past_its_hard_time_limit_sends_its_event_without_being_asked(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    headers = await sign_up(client, "overdue@example.com")
    submitted = await submit_with_callback(client, headers, receiver.url)
    task_id = submitted.json()["id"]
    await claim_an_hour_ago(ctx, task_id, "worker-that-hangs")

    assert await maintenance.fail_overdue_tasks(ctx) == 1
    await sends_settled(ctx)

    [event] = _events_received(receiver)
    assert event["type"] == "task.failed"
    assert event["data"]["task"]["error"]["code"] == "time-limit"
    [delivery] = await deliveries_of(client, headers, task_id)
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 1)
    assert await deliver_due(ctx) == 0


@pytest.mark.both_backends
async def test_two_transactions_recording_one_event_at_once_both_commit(
    client: httpx.AsyncClient,
    ctx: ProcessContext,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loser of the race finds the winner's row; its own transaction carries on."""
    headers = await sign_up(client, "twice@example.com")
    submitted = await submit_with_callback(client, headers, receiver.url)
    task_id = submitted.json()["id"]
    with monkeypatch.context() as patched:
        # The task ends without recording its event, so that both transactions below find none.
        async def record_nothing(session: object, task: Task) -> None:
            return None

        patched.setattr(webhooks_service, "record_task_event", record_nothing)
        assert await finish_queued_tasks(ctx) == ["succeeded"]
    assert await deliveries_of(client, headers, task_id) == []

    async def record_then_read_on() -> None:
        async with ctx.sessions.begin() as session:
            task = await session.get(Task, uuid.UUID(task_id))
            assert task is not None
            await record_task_event(session, task)
            assert (await session.get(Task, uuid.UUID(task_id))) is not None

    async with ctx.sessions.begin() as session:
        task = await session.get(Task, uuid.UUID(task_id))
        assert task is not None
        await record_task_event(session, task)
        second = asyncio.create_task(record_then_read_on())
        await asyncio.sleep(0.3)  # the second one is waiting on this uncommitted row
    await second

    assert len(await deliveries_of(client, headers, task_id)) == 1
    assert await deliver_due(ctx) == 1
    assert len(receiver.requests) == 1


async def test_a_task_without_a_callback_sends_nothing(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "quiet@example.com")
    succeeding = await submit_with_callback(client, headers, "")
    failing = await submit_with_callback(client, headers, "", image=truncated_jpeg())
    for submitted in (succeeding, failing):
        assert submitted.status_code == 202, submitted.text
        assert submitted.json()["callback_url"] is None
    assert sorted(await finish_queued_tasks(ctx)) == ["failed", "succeeded"]
    for submitted in (succeeding, failing):
        assert await deliveries_of(client, headers, submitted.json()["id"]) == []
    assert await deliver_due(ctx) == 0


async def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    headers = await sign_up(client, "flaky@example.com")
    secret = await _secret_of(client, headers)
    receiver.answer(500, times=2)
    task_id = await _finished_task(client, ctx, headers, receiver.url)

    # The first attempt, made when the task finished, failed and scheduled a retry.
    assert len(receiver.requests) == 1
    [delivery] = await deliveries_of(client, headers, task_id)
    assert (delivery["state"], delivery["attempts"], delivery["last_status_code"]) == (
        "pending",
        1,
        500,
    )
    assert delivery["last_error"] == "answered HTTP 500"
    assert delivery["next_attempt_at"] > delivery["created_at"]

    delivery = await deliver_until_settled(ctx, client, headers, task_id)
    assert (delivery["state"], delivery["attempts"], delivery["last_status_code"]) == (
        "delivered",
        3,
        200,
    )
    assert delivery["last_error"] is None
    assert len(receiver.requests) == 3
    # Every attempt is the same event: one delivery id, a fresh valid signature each time.
    assert {r.headers["pixelfleet-delivery"] for r in receiver.requests} == {delivery["id"]}
    assert all(
        verify_signature(secret, r.headers["pixelfleet-signature"], r.body)
        for r in receiver.requests
    )


async def test_a_receiver_that_never_succeeds_is_given_up_after_the_last_attempt(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    headers = await sign_up(client, "down@example.com")
    receiver.answer(503, times=100)
    task_id = await _finished_task(client, ctx, headers, receiver.url)
    assert len(receiver.requests) == 1

    delivery = await deliver_until_settled(ctx, client, headers, task_id)
    assert ctx.settings.webhook_max_attempts == 3
    assert (delivery["state"], delivery["attempts"], delivery["last_status_code"]) == (
        "failed",
        3,
        503,
    )
    assert "503" in delivery["last_error"]
    assert delivery["next_attempt_at"] is None
    assert len(receiver.requests) == 3
    await asyncio.sleep(0.1)
    assert await deliver_due(ctx) == 0
    assert len(receiver.requests) == 3


async def test_an_unreachable_receiver_is_retried_with_the_error_recorded(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "gone@example.com")
    task_id = await _finished_task(client, ctx, headers, f"http://127.0.0.1:{free_port()}/hook")

    [delivery] = await deliveries_of(client, headers, task_id)
    assert (delivery["state"], delivery["attempts"]) == ("pending", 1)
    assert delivery["last_status_code"] is None
    assert "ConnectError" in delivery["last_error"]
    assert delivery["next_attempt_at"] is not None

    delivery = await deliver_until_settled(ctx, client, headers, task_id)
    assert (delivery["state"], delivery["attempts"]) == ("failed", 3)
    assert delivery["last_status_code"] is None
    assert "ConnectError" in delivery["last_error"]


async def test_a_receiver_slower_than_the_timeout_counts_as_a_failed_attempt(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    headers = await sign_up(client, "slow@example.com")
    ctx.settings.webhook_timeout_seconds = 0.2
    receiver.delay_seconds = 1.0
    task_id = await _finished_task(client, ctx, headers, receiver.url)

    assert len(receiver.requests) == 1
    [delivery] = await deliveries_of(client, headers, task_id)
    assert (delivery["state"], delivery["attempts"]) == ("pending", 1)
    assert delivery["last_status_code"] is None
    assert "0.2 seconds" in delivery["last_error"]

    receiver.delay_seconds = 0.0
    delivery = await deliver_until_settled(ctx, client, headers, task_id)
    assert (delivery["state"], delivery["attempts"], delivery["last_status_code"]) == (
        "delivered",
        2,
        200,
    )
    assert len(receiver.requests) == 2


async def test_a_redirect_is_not_followed(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    headers = await sign_up(client, "moved@example.com")
    receiver.answer(307, headers={"Location": f"{receiver.url}/elsewhere"})
    task_id = await _finished_task(client, ctx, headers, f"{receiver.url}/hook")

    assert [r.path for r in receiver.requests] == ["/hook"]
    [delivery] = await deliveries_of(client, headers, task_id)
    assert (delivery["state"], delivery["attempts"], delivery["last_status_code"]) == (
        "pending",
        1,
        307,
    )
    assert "redirects are not followed" in delivery["last_error"]
    assert f"{receiver.url}/elsewhere" in delivery["last_error"]

    # The retry goes to the callback URL again, never to where the redirect pointed.
    delivery = await deliver_until_settled(ctx, client, headers, task_id)
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 2)
    assert [r.path for r in receiver.requests] == ["/hook", "/hook"]


async def test_the_embedded_scheduler_sends_the_retries(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    headers = await sign_up(client, "sweep@example.com")
    receiver.answer(500)
    task_id = await _finished_task(client, ctx, headers, receiver.url)
    [delivery] = await deliveries_of(client, headers, task_id)
    assert (delivery["state"], delivery["attempts"]) == ("pending", 1)

    ctx.settings.webhook_sweep_seconds = 0.05
    stop = asyncio.Event()
    scheduler = asyncio.create_task(run_scheduler(ctx, stop))
    try:
        async with asyncio.timeout(SETTLE_SECONDS):
            while delivery["state"] == "pending":
                await asyncio.sleep(0.05)
                [delivery] = await deliveries_of(client, headers, task_id)
    finally:
        stop.set()
        await scheduler
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 2)
    assert len(receiver.requests) == 2


@pytest.mark.both_backends
async def test_two_senders_at_once_make_each_attempt_once(
    client: httpx.AsyncClient,
    ctx: ProcessContext,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers = await sign_up(client, "busy@example.com")
    # Each task's own attempt fails: the retries are left for the senders below.
    receiver.answer(500, times=3)
    task_ids = [await _finished_task(client, ctx, headers, receiver.url) for _ in range(3)]
    assert len(receiver.requests) == 3
    for task_id in task_ids:
        [delivery] = await deliveries_of(client, headers, task_id)
        assert (delivery["state"], delivery["attempts"]) == ("pending", 1)
    await asyncio.sleep(0.1)  # the retries come due (the backoff is 10 ms here)

    # Each sender reads the due deliveries, then waits for the other to have read them too:
    # both go on to claim the same three attempts.
    read_due = WebhookDeliveryRepository.due
    both_read = asyncio.Barrier(2)
    seen: list[int] = []

    async def due_then_wait(self: WebhookDeliveryRepository, *args: Any) -> list[DueDelivery]:
        due = await read_due(self, *args)
        seen.append(len(due))
        await both_read.wait()
        return due

    monkeypatch.setattr(WebhookDeliveryRepository, "due", due_then_wait)
    receiver.delay_seconds = 0.1
    other = create_context(ctx.settings)  # a second sender, as in another process
    try:
        made = await asyncio.gather(deliver_due(ctx), deliver_due(other))
    finally:
        await other.close()

    assert seen == [3, 3]
    assert sum(made) == 3
    # One request per attempt: each event's failed first attempt, and one retry each.
    assert len(receiver.requests) == 6
    sent = sorted(json.loads(r.body)["data"]["task"]["id"] for r in receiver.requests)
    assert sent == sorted(task_ids * 2)
    for task_id in task_ids:
        [delivery] = await deliveries_of(client, headers, task_id)
        assert (delivery["state"], delivery["attempts"]) == ("delivered", 2)


async def test_deliveries_are_listed_newest_first_in_pages_to_the_owner_only(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    headers = await sign_up(client, "pages@example.com")
    task_id = await _finished_task(client, ctx, headers, receiver.url)
    # Two more events for the same task, as if it had ended again (the table allows one per
    # event): enough rows to page through.
    for status in ("failed", "cancelled"):
        async with ctx.sessions.begin() as session:
            task = await session.get(Task, uuid.UUID(task_id))
            assert task is not None
            task.status = status
        await record_final_event(ctx, task_id)

    url = f"/v1/tasks/{task_id}/deliveries"
    first = (await client.get(url, headers=headers, params={"limit": 2})).json()
    assert [d["event"] for d in first["items"]] == ["task.cancelled", "task.failed"]
    assert first["next_cursor"]
    second = (
        await client.get(url, headers=headers, params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [d["event"] for d in second["items"]] == ["task.succeeded"]
    assert second["next_cursor"] is None

    stranger = await sign_up(client, "stranger@example.com")
    for path in (url, f"/v1/tasks/{uuid.uuid4()}/deliveries"):
        hidden = await client.get(path, headers=stranger)
        assert hidden.status_code == 404
        assert hidden.headers["content-type"] == PROBLEM
    assert (await client.get(url)).status_code == 401
    bad_cursor = await client.get(url, headers=headers, params={"cursor": "nonsense"})
    assert bad_cursor.status_code == 422
    assert bad_cursor.headers["content-type"] == PROBLEM


async def test_invalid_callback_urls_are_refused_before_anything_is_charged(
    client: httpx.AsyncClient,
) -> None:
    headers = await sign_up(client, "typo@example.com")
    refused = [
        "ftp://example.com/hook",
        "https://user:password@example.com/hook",
        "https://example.com/" + "a" * 2048,
        "http:///no-host",
        "example.com/hook",
        "https://example.com/a hook",
        "https://example.com:99999/hook",
    ]
    for url in refused:
        response = await submit_with_callback(client, headers, url)
        assert response.status_code == 422, (url, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert [e["field"] for e in response.json()["errors"]] == ["callback_url"], url
    assert await balance_of(client, headers) == 100
    assert (await client.get("/v1/tasks", headers=headers)).json()["items"] == []


async def test_an_idempotency_key_covers_the_callback_url(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    headers = await sign_up(client, "again@example.com")
    key = {"Idempotency-Key": "order-42"}
    first = await submit_with_callback(client, headers, f"{receiver.url}/a", extra_headers=key)
    assert first.status_code == 202, first.text
    same = await submit_with_callback(client, headers, f"{receiver.url}/a", extra_headers=key)
    assert same.headers.get("idempotent-replayed") == "true"
    assert same.json()["id"] == first.json()["id"]
    changed = await submit_with_callback(client, headers, f"{receiver.url}/b", extra_headers=key)
    assert changed.status_code == 409
    assert changed.headers["content-type"] == PROBLEM
