"""Each account rotates its own webhook secret: the answer is the new secret, and the previous
one still signs, in a second `v1`, until the grace (`PIXELFLEET_WEBHOOK_SECRET_GRACE_HOURS`)
ends; nobody else's secret changes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import httpx
import pytest

from pixelfleet.context import ProcessContext
from pixelfleet.db import utcnow
from pixelfleet.webhooks.delivery import deliver_due
from pixelfleet.webhooks.signing import user_signing_secret, verify_signature
from tests.api_helpers import sign_up
from tests.webhooks.receiver import ReceivedRequest, Receiver
from tests.webhooks.steps import finish_queued_tasks, submit_with_callback

GRACE = timedelta(hours=24)  # the default


async def _secret_of(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await client.get("/v1/me/webhook-secret", headers=headers)
    assert response.status_code == 200, response.text
    secret: str = response.json()["secret"]
    return secret


async def _rotate(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/v1/me/webhook-secret/rotate", headers=headers)


async def _event(
    client: httpx.AsyncClient,
    ctx: ProcessContext,
    headers: dict[str, str],
    receiver: Receiver,
    at: datetime | None = None,
) -> ReceivedRequest:
    """A task's event as its receiver gets it: sent when the task ends, or, when `at` is
    given, the receiver refuses that first attempt and gets the retry the sender makes at `at`."""
    if at is not None:
        receiver.answer(503)
    submitted = await submit_with_callback(client, headers, f"{receiver.url}/hook")
    assert submitted.status_code == 202, submitted.text
    before = len(receiver.requests)
    await finish_queued_tasks(ctx)
    if at is not None:
        assert await deliver_due(ctx, task_id=uuid.UUID(submitted.json()["id"]), now=at) == 1
    received = receiver.requests[before:]
    request = received[-1]
    assert request.headers["pixelfleet-delivery"] == received[0].headers["pixelfleet-delivery"]
    return request


def _signs(secret: str, request: ReceivedRequest, at: datetime | None = None) -> bool:
    now = (at or utcnow()).timestamp()
    return verify_signature(secret, request.headers["pixelfleet-signature"], request.body, now=now)


def _signatures(request: ReceivedRequest) -> int:
    return request.headers["pixelfleet-signature"].count("v1=")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_after_a_rotation_both_secrets_sign_until_the_grace_ends_then_only_the_new(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    headers = await sign_up(client, "rotator@example.com")
    old = await _secret_of(client, headers)
    before = await _event(client, ctx, headers, receiver)
    assert _signatures(before) == 1
    assert _signs(old, before)

    rotated = await _rotate(client, headers)
    asked_at = utcnow()

    assert rotated.status_code == 200, rotated.text
    assert rotated.headers["cache-control"] == "no-store"
    new = rotated.json()["secret"]
    assert new.startswith("whsec_")
    assert new != old
    until = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
    assert asked_at - timedelta(minutes=1) < until - GRACE <= asked_at
    shown = (await client.get("/v1/me/webhook-secret", headers=headers)).json()
    assert (shown["secret"], shown["previous_secret_expires_at"]) == (
        new,
        rotated.json()["previous_secret_expires_at"],
    )

    during = await _event(client, ctx, headers, receiver)
    assert _signatures(during) == 2
    assert _signs(new, during)
    assert _signs(old, during)
    late = until - timedelta(minutes=1)  # the sender's clock, just inside the grace
    near_the_end = await _event(client, ctx, headers, receiver, at=late)
    assert _signatures(near_the_end) == 2
    assert _signs(new, near_the_end, late)
    assert _signs(old, near_the_end, late)

    after = until + timedelta(seconds=1)
    past_the_grace = await _event(client, ctx, headers, receiver, at=after)
    assert _signatures(past_the_grace) == 1
    assert _signs(new, past_the_grace, after)
    assert not _signs(old, past_the_grace, after)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_rotation_changes_no_other_accounts_secret(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    ann = await sign_up(client, "ann@example.com")
    ben = await sign_up(client, "ben@example.com")
    bens = await _secret_of(client, ben)

    assert (await _rotate(client, ann)).status_code == 200

    assert await _secret_of(client, ben) == bens
    shown = (await client.get("/v1/me/webhook-secret", headers=ben)).json()
    assert shown["previous_secret_expires_at"] is None
    event = await _event(client, ctx, ben, receiver)
    assert _signatures(event) == 1
    assert _signs(bens, event)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_account_that_never_rotated_keeps_the_secret_it_always_had(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    """Receivers set up before rotation existed go on working: the starting secret is the one
    derived from the server key and the account's id alone."""
    headers = await sign_up(client, "veteran@example.com")
    me = (await client.get("/v1/me", headers=headers)).json()

    assert await _secret_of(client, headers) == user_signing_secret(
        ctx.settings, uuid.UUID(me["id"])
    )


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_rotating_again_within_the_grace_retires_the_oldest_secret(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    headers = await sign_up(client, "twice@example.com")
    first = await _secret_of(client, headers)
    second = (await _rotate(client, headers)).json()["secret"]
    third = (await _rotate(client, headers)).json()["secret"]

    event = await _event(client, ctx, headers, receiver)

    assert len({first, second, third}) == 3
    assert _signatures(event) == 2
    assert _signs(third, event)
    assert _signs(second, event)
    assert not _signs(first, event)


async def test_rotations_at_once_each_keep_the_secret_they_replace(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    """The account's row is locked while it rotates: each rotation keeps as the previous secret
    the one an earlier rotation answered, never the one they all started from."""
    headers = await sign_up(client, "all-at-once@example.com")
    started_with = await _secret_of(client, headers)

    answers = await asyncio.gather(*(_rotate(client, headers) for _ in range(8)))

    assert {a.status_code for a in answers} == {200}
    secrets = {a.json()["secret"] for a in answers}
    assert len(secrets) == 8
    event = await _event(client, ctx, headers, receiver)
    signing = [secret for secret in (*secrets, started_with) if _signs(secret, event)]
    assert len(signing) == 2
    assert started_with not in signing
    assert await _secret_of(client, headers) in signing


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_only_an_interactive_login_rotates_the_secret(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "keyholder@example.com")
    secret = await _secret_of(client, headers)
    created = await client.post(
        "/v1/me/api-keys",
        headers=headers,
        json={"name": "ci", "scopes": ["tasks:read", "tasks:write", "credits:read"]},
    )
    assert created.status_code == 201, created.text
    key = {"Authorization": f"Bearer {created.json()['key']}"}

    with_key = await _rotate(client, key)
    anonymous = await client.post("/v1/me/webhook-secret/rotate")

    assert with_key.status_code == 403, with_key.text
    assert with_key.headers["content-type"] == "application/problem+json"
    assert anonymous.status_code == 401
    assert await _secret_of(client, headers) == secret
