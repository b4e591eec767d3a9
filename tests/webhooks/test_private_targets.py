"""With private targets refused (the default), a callback URL can reach only public addresses:
a literal private address is refused at submission, and a host that resolves to one (even
among public ones) is refused at delivery, without a request and without a retry."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from pixelfleet import outbound
from pixelfleet.context import ProcessContext
from pixelfleet.settings import Settings
from pixelfleet.webhooks.delivery import deliver_due
from tests.api_helpers import PROBLEM, balance_of, sign_up
from tests.webhooks.receiver import Receiver
from tests.webhooks.steps import deliveries_of, finish_queued_tasks, submit_with_callback


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private_targets": False})


def _resolving(names: dict[str, list[str]]) -> object:
    async def resolve(host: str, port: int) -> list[str]:
        return names[host]

    return resolve


async def _task_with_callback(
    client: httpx.AsyncClient, ctx: ProcessContext, headers: dict[str, str], url: str
) -> str:
    response = await submit_with_callback(client, headers, url)
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    assert await finish_queued_tasks(ctx) == ["succeeded"]  # its event's first attempt included
    return task_id


PRIVATE_CALLBACKS = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://api.localhost/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://10.0.0.7/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/hook",
    "http://2130706433/hook",
    "http://127.1/hook",
]


async def test_a_private_address_is_refused_at_submission(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "inside@example.com")
    for url in PRIVATE_CALLBACKS:
        response = await submit_with_callback(client, headers, url)
        assert response.status_code == 422, (url, response.text)
        assert response.headers["content-type"] == PROBLEM
        [error] = response.json()["errors"]
        assert error["field"] == "callback_url"
        assert "public" in error["message"]
    assert await balance_of(client, headers) == 100
    assert (await client.get("/v1/tasks", headers=headers)).json()["items"] == []


async def test_a_private_target_is_refused_at_delivery_without_a_request(
    client: httpx.AsyncClient, ctx: ProcessContext, receiver: Receiver
) -> None:
    headers = await sign_up(client, "changed@example.com")
    # Submitted while private targets were allowed; the operator has switched them off since.
    ctx.settings.webhook_allow_private_targets = True
    response = await submit_with_callback(client, headers, receiver.url)
    assert response.status_code == 202, response.text
    ctx.settings.webhook_allow_private_targets = False
    task_id = response.json()["id"]
    assert await finish_queued_tasks(ctx) == ["succeeded"]

    [delivery] = await deliveries_of(client, headers, task_id)
    assert (delivery["state"], delivery["attempts"]) == ("refused", 1)
    assert "public" in delivery["last_error"]
    assert delivery["next_attempt_at"] is None
    assert receiver.requests == []
    await asyncio.sleep(0.1)  # longer than the backoff: a retry would be due by now
    assert await deliver_due(ctx) == 0
    assert receiver.requests == []


async def test_a_name_with_any_private_address_is_refused_at_delivery(
    client: httpx.AsyncClient,
    ctx: ProcessContext,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        outbound, "resolve", _resolving({"hooks.example.com": ["93.184.215.14", "10.1.2.3"]})
    )
    headers = await sign_up(client, "rebind@example.com")
    task_id = await _task_with_callback(
        client, ctx, headers, f"http://hooks.example.com:{receiver.port}/hook"
    )

    [delivery] = await deliveries_of(client, headers, task_id)
    assert (delivery["state"], delivery["attempts"]) == ("refused", 1)
    assert "10.1.2.3" not in delivery["last_error"]  # says nothing of the internal network
    assert receiver.requests == []
    await asyncio.sleep(0.1)
    assert await deliver_due(ctx) == 0
    assert receiver.requests == []


async def test_a_public_name_is_sent_to_the_address_that_was_checked(
    client: httpx.AsyncClient,
    ctx: ProcessContext,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The request goes to the resolved, checked address with the name in its Host header: a
    second lookup (which a rebinding DNS server could answer differently) never happens. The
    receiver's loopback address stands in for a public one here."""
    monkeypatch.setattr(outbound, "resolve", _resolving({"hooks.example.com": ["127.0.0.1"]}))
    monkeypatch.setattr(outbound, "is_public_address", lambda address: True)
    headers = await sign_up(client, "pinned@example.com")
    task_id = await _task_with_callback(
        client, ctx, headers, f"http://hooks.example.com:{receiver.port}/hook?x=1"
    )

    [request] = receiver.requests
    assert request.path == "/hook?x=1"
    assert request.headers["host"] == f"hooks.example.com:{receiver.port}"
    assert json.loads(request.body)["data"]["task"]["id"] == task_id
    [delivery] = await deliveries_of(client, headers, task_id)
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 1)
