"""A task's event stream lasts only as long as the credential that opened it: a revoked API key,
a disabled account or logins ended by a deactivation end an open stream within about 2 s, with
one `error` event carrying the problem, and never a server error. Against a real uvicorn in the
embedded mode (events come over the local socket, and the record is read after each quiet
second); tests/celery_mode checks the Redis stream."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from pixelfleet.api.app import create_app
from pixelfleet.context import ProcessContext
from tests.admin.steps import bearer, id_of, sign_up_admin
from tests.api_helpers import events_of, sign_up, submit
from tests.harness.served import served

# The stream ends within about 2 s of its credential; the rest is slack for a loaded machine.
ENDS_WITHIN_SECONDS = 6.0

Event = tuple[str, dict[str, Any]]


@pytest.fixture
def backend() -> str:
    """Credentials and streams are not a matter of database semantics: one backend."""
    return "sqlite"


async def events_after(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    task_id: str,
    action: Callable[[], Awaitable[None]],
    *,
    within: float = ENDS_WITHIN_SECONDS,
) -> list[Event]:
    """Opens the task's stream, waits for its first event, runs `action`, and returns the events
    that follow until the server ends the stream (which must happen `within` seconds)."""
    async with http.stream("GET", f"/v1/tasks/{task_id}/events", headers=headers) as stream:
        assert stream.status_code == 200
        events = events_of(stream)
        name, first = await anext(events)
        assert (name, first["status"]) == ("progress", "queued")
        await action()

        async def rest() -> list[Event]:
            return [event async for event in events]

        return await asyncio.wait_for(rest(), within)


def assert_ended_by(events: list[Event], slug: str, task_id: str) -> None:
    assert [name for name, _ in events] == ["error"]
    problem = events[0][1]
    assert problem["type"].endswith(f"/{slug}")
    assert problem["status"] in (401, 403)
    assert problem["instance"] == f"/v1/tasks/{task_id}/events"
    assert problem["detail"]


async def new_key(http: httpx.AsyncClient, owner: dict[str, str]) -> tuple[str, dict[str, str]]:
    created = await http.post(
        "/v1/me/api-keys", headers=owner, json={"name": "watcher", "scopes": ["tasks:read"]}
    )
    assert created.status_code == 201, created.text
    return created.json()["id"], bearer(created.json()["key"])


async def test_revoking_an_api_key_ends_the_stream_it_opened(ctx: ProcessContext) -> None:
    async with (
        served(create_app(ctx=ctx)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        owner = await sign_up(http, "keys@example.com")
        task_id = (await submit(http, owner)).json()["id"]
        key_id, key = await new_key(http, owner)

        async def revoke() -> None:
            response = await http.delete(f"/v1/me/api-keys/{key_id}", headers=owner)
            assert response.status_code == 204

        events = await events_after(http, key, task_id, revoke)
        assert_ended_by(events, "invalid-token", task_id)
        # The owner's own stream goes on (the task is still queued: nothing runs it here).
        async with http.stream("GET", f"/v1/tasks/{task_id}/events", headers=owner) as stream:
            assert (await anext(events_of(stream)))[0] == "progress"


async def test_deactivating_an_account_ends_its_streams(ctx: ProcessContext) -> None:
    async with (
        served(create_app(ctx=ctx)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        admin = await sign_up_admin(http, ctx)
        user = await sign_up(http, "benched@example.com")
        user_id = await id_of(http, user)
        task_id = (await submit(http, user)).json()["id"]

        async def deactivate() -> None:
            response = await http.post(
                f"/v1/admin/users/{user_id}/deactivate", headers=admin, json={"reason": "abuse"}
            )
            assert response.status_code == 200

        events = await events_after(http, user, task_id, deactivate)
        assert_ended_by(events, "account-disabled", task_id)


async def test_a_stream_from_before_a_deactivation_ends_even_if_the_account_is_back_on(
    ctx: ProcessContext,
) -> None:
    async with (
        served(create_app(ctx=ctx)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        admin = await sign_up_admin(http, ctx)
        user = await sign_up(http, "back@example.com")
        user_id = await id_of(http, user)
        task_id = (await submit(http, user)).json()["id"]

        async def deactivate_and_reactivate() -> None:
            for change in ("deactivate", "reactivate"):
                response = await http.post(
                    f"/v1/admin/users/{user_id}/{change}", headers=admin, json={"reason": "test"}
                )
                assert response.status_code == 200

        events = await events_after(http, user, task_id, deactivate_and_reactivate)
        assert_ended_by(events, "invalid-token", task_id)
