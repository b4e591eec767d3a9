"""Cross-origin calls from a browser: only the origins PIXELFLEET_CORS_ALLOW_ORIGINS names may
call the API from another site; without it the API answers no cross-origin request."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from pixelfleet.api.app import create_app
from pixelfleet.context import ProcessContext

APP_ORIGIN = "https://app.example.com"


@pytest.fixture
async def cors_client(ctx: ProcessContext) -> AsyncIterator[httpx.AsyncClient]:
    ctx.settings.cors_allow_origins = [APP_ORIGIN]
    transport = httpx.ASGITransport(app=create_app(ctx=ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://pixelfleet.test") as http:
        yield http


def _preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, idempotency-key, content-type",
    }


async def test_an_allowed_origin_may_upload_with_a_token_and_an_idempotency_key(
    cors_client: httpx.AsyncClient,
) -> None:
    answer = await cors_client.options("/v1/tasks", headers=_preflight(APP_ORIGIN))
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == APP_ORIGIN
    allowed = answer.headers["access-control-allow-headers"].lower()
    assert {"authorization", "idempotency-key", "content-type"} <= {
        h.strip() for h in allowed.split(",")
    }
    simple = await cors_client.get("/healthz", headers={"Origin": APP_ORIGIN})
    assert simple.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


async def test_another_origin_is_not_let_in(cors_client: httpx.AsyncClient) -> None:
    answer = await cors_client.options("/v1/tasks", headers=_preflight("https://evil.example"))
    assert answer.status_code == 400
    assert "access-control-allow-origin" not in answer.headers
    simple = await cors_client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_without_the_setting_no_cross_origin_call_is_allowed(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/healthz", headers={"Origin": APP_ORIGIN})
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
