"""Delivery is counted: bytes of images the API sent, by route; signed result URLs answered by
a redirect; derivative URL reads by cache outcome (hit, miss); derivations a first read
started, by how that read ended. Every series exists at 0 before anything happens."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from pixelfleet.context import ProcessContext
from pixelfleet.observability.metrics import (
    DELIVERY_ROUTES,
    DERIVATION_OUTCOMES,
    IMAGE_CACHE_OUTCOMES,
)
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import image_bytes, sign_up, submit

SERIES = [
    *(("pixelfleet_delivered_bytes_total", {"route": route}) for route in DELIVERY_ROUTES),
    *(("pixelfleet_image_requests_total", {"cache": cache}) for cache in IMAGE_CACHE_OUTCOMES),
    *(("pixelfleet_derivations_total", {"outcome": outcome}) for outcome in DERIVATION_OUTCOMES),
    ("pixelfleet_delivery_redirects_total", {}),
]


def counted() -> dict[str, float]:
    values = {}
    for name, labels in SERIES:
        value = REGISTRY.get_sample_value(name, labels)
        assert value is not None, f"{name}{labels} does not exist"
        values[f"{name}{sorted(labels.values())}"] = value
    return values


def moved(before: dict[str, float]) -> dict[str, float]:
    now = counted()
    return {key: now[key] - before[key] for key in now if now[key] != before[key]}



async def test_results_and_derivatives_are_counted_as_they_are_sent(
    client: httpx.AsyncClient, ctx: ProcessContext, worker: None
) -> None:
    headers = await sign_up(client, "delivery-metrics@example.com")
    task = await submit(client, headers, {}, image_bytes("PNG", (64, 48)))
    done: dict[str, Any] = {"status": "queued"}
    while done["status"] != "succeeded":  # a long-poll: each answer comes with a change
        read = await client.get(f"/v1/tasks/{task.json()['id']}?wait=5", headers=headers)
        done = read.json()
    await client.put("/v1/presets/mark", headers=headers, json={"pipeline": {}})
    signed = await client.post(
        "/v1/image-urls", headers=headers, json={"source": {"task": done["id"]}, "preset": "mark"}
    )
    before = counted()

    owned = await client.get(f"/v1/tasks/{done['id']}/result", headers=headers)
    by_url = await client.get(done["result"]["url"], headers={"Range": "bytes=0-9"})
    first = await client.get(signed.json()["url"])
    second = await client.get(signed.json()["url"])
    assert [a.status_code for a in (owned, by_url, first, second)] == [200, 206, 200, 200]

    assert moved(before) == {
        "pixelfleet_delivered_bytes_total['result']": len(owned.content),
        "pixelfleet_delivered_bytes_total['signed_result']": 10,
        "pixelfleet_delivered_bytes_total['image']": len(first.content) + len(second.content),
        "pixelfleet_image_requests_total['miss']": 1,
        "pixelfleet_image_requests_total['hit']": 1,
        "pixelfleet_derivations_total['succeeded']": 1,
    }


async def test_a_derivation_past_its_time_budget_is_counted_pending(
    client: httpx.AsyncClient, ctx: ProcessContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = await sign_up(client, "pending-metrics@example.com")
    asset = await client.post(
        "/v1/assets", headers=headers, files={"file": ("a.png", image_bytes("PNG"), "image/png")}
    )
    await client.put("/v1/presets/mark", headers=headers, json={"pipeline": {}})
    signed = await client.post(
        "/v1/image-urls",
        headers=headers,
        json={"source": {"asset": asset.json()["id"]}, "preset": "mark"},
    )
    monkeypatch.setattr(ctx.settings, "derive_timeout_seconds", 0.01)
    before = counted()
    assert (await client.get(signed.json()["url"])).status_code == 503  # no worker yet
    assert (await client.get(signed.json()["url"])).status_code == 503  # waits for the same
    assert moved(before) == {"pixelfleet_derivations_total['pending']": 1}
    await drain_queue(ctx)
