"""What an API key reaches, route by route and field by field. Every route of the app is in the
table below with what it needs; a route added without its line fails the first test, so no new
route can leak to a key by being forgotten. Each line is then tried with no credential, with a
key holding every scope but the one needed, and with a key holding just that scope."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.routing import BaseRoute, Mount

from pixelfleet.accounts.scopes import CREDITS_READ, KEY_SCOPES, TASKS_READ, TASKS_WRITE
from pixelfleet.api.app import create_app
from pixelfleet.context import ProcessContext
from pixelfleet.credits import service as credits
from pixelfleet.settings import Settings
from tests.admin.steps import sign_up_admin
from tests.api_helpers import sign_up, submit
from tests.hardening.tally import TALLY

PUBLIC = "no credential"  # anyone, signed in or not
URL_TOKEN = "its URL's token"  # a capability in the URL, whoever sends it: never a 401
ANY_KEY = "any key"  # any working credential, whatever its scopes
LOGIN = "a login"  # an interactive login (an admin's, for /v1/admin): never an API key

GUARDS: dict[tuple[str, str], str] = {
    ("GET", "/"): PUBLIC,
    ("HEAD", "/"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("HEAD", "/docs"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("HEAD", "/redoc"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("HEAD", "/openapi.json"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("HEAD", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("HEAD", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    # The console's pages a mailed link opens (the token is the credential, sent by the page).
    ("GET", "/reset-password"): PUBLIC,
    ("HEAD", "/reset-password"): PUBLIC,
    ("GET", "/verify-email"): PUBLIC,
    ("HEAD", "/verify-email"): PUBLIC,
    ("POST", "/v1/auth/register"): PUBLIC,
    ("POST", "/v1/auth/token"): PUBLIC,
    ("POST", "/v1/auth/password-reset"): PUBLIC,
    ("POST", "/v1/auth/password-reset/confirm"): PUBLIC,
    ("POST", "/v1/auth/verify-email"): PUBLIC,
    ("POST", "/v1/auth/refresh"): PUBLIC,
    ("POST", "/v1/auth/logout"): PUBLIC,
    ("GET", "/v1/operations"): PUBLIC,
    ("GET", "/v1/payments/packs"): PUBLIC,
    ("POST", "/v1/payments/webhook"): PUBLIC,  # signed by Razorpay instead
    ("GET", "/v1/me"): ANY_KEY,  # its balance only with credits:read (below)
    ("GET", "/v1/credits"): CREDITS_READ,
    ("GET", "/v1/usage"): CREDITS_READ,
    ("GET", "/v1/payments"): CREDITS_READ,
    ("GET", "/v1/tasks"): TASKS_READ,
    ("GET", "/v1/tasks/{task_id}"): TASKS_READ,
    ("GET", "/v1/tasks/{task_id}/result"): TASKS_READ,
    ("HEAD", "/v1/tasks/{task_id}/result"): TASKS_READ,
    ("GET", "/v1/tasks/{task_id}/events"): TASKS_READ,
    ("GET", "/v1/tasks/{task_id}/deliveries"): TASKS_READ,
    ("GET", "/v1/presets"): TASKS_READ,
    ("GET", "/v1/presets/{name}"): TASKS_READ,
    ("GET", "/v1/assets"): TASKS_READ,
    ("GET", "/v1/assets/{asset_id}"): TASKS_READ,
    ("POST", "/v1/tasks"): TASKS_WRITE,
    ("POST", "/v1/quotes"): TASKS_WRITE,
    ("DELETE", "/v1/tasks/{task_id}"): TASKS_WRITE,
    ("POST", "/v1/presets"): TASKS_WRITE,
    ("PUT", "/v1/presets/{name}"): TASKS_WRITE,
    ("DELETE", "/v1/presets/{name}"): TASKS_WRITE,
    ("POST", "/v1/assets"): TASKS_WRITE,
    ("DELETE", "/v1/assets/{asset_id}"): TASKS_WRITE,
    ("POST", "/v1/uploads"): TASKS_WRITE,
    ("GET", "/v1/uploads/{upload_id}"): TASKS_READ,
    ("POST", "/v1/image-urls"): TASKS_WRITE,
    # tests/sources/test_direct_uploads.py, tests/jobs/test_result_urls.py and
    # tests/derivatives/test_image_urls.py send forged, swapped, late and rotated tokens.
    ("GET", "/v1/images/{token}"): URL_TOKEN,
    ("HEAD", "/v1/images/{token}"): URL_TOKEN,
    ("PUT", "/v1/uploads/{upload_id}/content"): URL_TOKEN,
    ("GET", "/v1/results/{token}"): URL_TOKEN,
    ("HEAD", "/v1/results/{token}"): URL_TOKEN,
    ("POST", "/v1/me/api-keys"): LOGIN,
    ("GET", "/v1/me/api-keys"): LOGIN,
    ("GET", "/v1/me/api-keys/{key_id}"): LOGIN,
    ("DELETE", "/v1/me/api-keys/{key_id}"): LOGIN,
    ("GET", "/v1/me/webhook-secret"): LOGIN,
    ("POST", "/v1/me/webhook-secret/rotate"): LOGIN,
    ("POST", "/v1/me/password"): LOGIN,
    ("GET", "/v1/me/export"): LOGIN,
    ("DELETE", "/v1/me"): LOGIN,
    ("POST", "/v1/me/email-verification"): LOGIN,
    ("POST", "/v1/me/delivery-key/rotate"): LOGIN,
    ("POST", "/v1/payments/orders"): LOGIN,
    ("POST", "/v1/payments/verify"): LOGIN,
    ("GET", "/v1/admin/users"): LOGIN,
    ("GET", "/v1/admin/users/{user_id}"): LOGIN,
    ("POST", "/v1/admin/users/{user_id}/deactivate"): LOGIN,
    ("POST", "/v1/admin/users/{user_id}/reactivate"): LOGIN,
    ("POST", "/v1/admin/users/{user_id}/erase"): LOGIN,
    ("POST", "/v1/admin/users/{user_id}/credits"): LOGIN,
    ("GET", "/v1/admin/tasks"): LOGIN,
    ("GET", "/v1/admin/stats"): LOGIN,
    ("GET", "/v1/admin/audit"): LOGIN,
}


@pytest.fixture
def backend() -> str:
    """Scopes are not a matter of database semantics: one backend."""
    return "sqlite"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Payments configured, so that their routes answer as in production (nothing here reaches
    Razorpay: the routes that would are refused first)."""
    return settings.model_copy(
        update={
            "razorpay_key_id": "rzp_test_probe",
            "razorpay_key_secret": SecretStr("probe-key-secret"),
            "razorpay_webhook_secret": SecretStr("probe-webhook-secret"),
        }
    )


def routes_of(routes: Iterable[BaseRoute]) -> Iterator[tuple[str, str]]:
    """Every (method, path) the app answers, included routers followed (static files aside)."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from routes_of(nested.routes)
        elif not isinstance(route, Mount):
            for method in getattr(route, "methods", None) or ():
                yield method, str(getattr(route, "path", ""))


def test_every_route_says_what_a_key_needs_for_it(ctx: ProcessContext) -> None:
    app: FastAPI = create_app(ctx=ctx)
    served = set(routes_of(app.routes))
    assert served - GUARDS.keys() == set(), "routes missing from GUARDS: say what they need"
    assert GUARDS.keys() - served == set(), "GUARDS names routes the app no longer has"


def _url(path: str) -> str:
    """The path with made-up ids: a key's scope is checked before anything is looked up."""
    ids = {
        name: uuid.uuid4() for name in ("task_id", "asset_id", "key_id", "user_id", "upload_id")
    }
    return path.format(**ids, name="avatar", token="made.up.token")


async def _key(client: httpx.AsyncClient, login: dict[str, str], *scopes: str) -> dict[str, str]:
    created = await client.post(
        "/v1/me/api-keys", headers=login, json={"name": "probe", "scopes": list(scopes)}
    )
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['key']}"}


def _refused_for_scope(response: httpx.Response) -> bool:
    if response.request.method == "HEAD":  # the headers of the GET's answer, with no body
        return response.status_code == 403
    return response.status_code == 403 and str(response.json()["type"]).endswith(
        "/insufficient-scope"
    )


async def test_each_route_asks_an_api_key_for_exactly_the_scope_in_the_table(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    # An administrator's keys: not even theirs reach what needs a login.
    login = await sign_up_admin(client, ctx, "probe@example.com")
    every_scope = await _key(client, login, *KEY_SCOPES)
    all_but = {
        scope: await _key(client, login, *(other for other in KEY_SCOPES if other != scope))
        for scope in KEY_SCOPES
    }
    just = {scope: await _key(client, login, scope) for scope in KEY_SCOPES}
    wrong: list[str] = []

    async def call(method: str, path: str, headers: dict[str, str], as_who: str) -> Any:
        response = await client.request(method, _url(path), headers=headers)
        TALLY.attack("scopes", f"{method} {path} {as_who}", response)
        if response.status_code >= 500:
            wrong.append(f"{method} {path} {as_who}: {response.status_code}")
        return response

    for (method, path), needs in GUARDS.items():
        anonymous = await call(method, path, {}, "anonymous")
        if needs == URL_TOKEN:
            if anonymous.status_code == 401:
                wrong.append(f"{method} {path} asks for a credential besides its URL")
            continue
        if needs == PUBLIC:
            if anonymous.status_code in (401, 403):
                wrong.append(f"{method} {path} refuses the public: {anonymous.status_code}")
            continue
        if anonymous.status_code != 401:
            wrong.append(f"{method} {path} without a credential: {anonymous.status_code}")
        if needs == ANY_KEY:
            for scope, key in just.items():
                answer = await call(method, path, key, f"with {scope} alone")
                if answer.status_code in (401, 403):
                    wrong.append(f"{method} {path} refuses a key with {scope}")
            continue
        if needs == LOGIN:
            if not _refused_for_scope(await call(method, path, every_scope, "every scope")):
                wrong.append(f"{method} {path} is not refused to a key with every scope")
            continue
        if not _refused_for_scope(await call(method, path, all_but[needs], f"without {needs}")):
            wrong.append(f"{method} {path} is not refused to a key without {needs}")
        alone = await call(method, path, just[needs], f"with {needs} alone")
        if alone.status_code in (401, 403):
            wrong.append(f"{method} {path} refuses a key with {needs}: {alone.status_code}")
    assert wrong == [], "\n".join(wrong)


async def test_the_account_shows_its_balance_only_to_a_key_that_may_read_credits(
    client: httpx.AsyncClient,
) -> None:
    login = await sign_up(client, "balance@example.com")
    mine = (await client.get("/v1/me", headers=login)).json()
    assert mine["balance"] == 100
    for scopes, balance in (
        ([TASKS_READ, TASKS_WRITE], None),
        ([TASKS_READ], None),
        ([CREDITS_READ], 100),
        ([TASKS_WRITE, CREDITS_READ], 100),
    ):
        answer = await client.get("/v1/me", headers=await _key(client, login, *scopes))
        TALLY.attack("scopes", f"GET /v1/me with {scopes}", answer)
        assert answer.status_code == 200
        assert answer.json() == {**mine, "balance": balance}, scopes


async def test_a_refused_task_does_not_tell_a_key_without_credits_read_the_balance(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    login = await sign_up(client, "poor@example.com")
    user_id = uuid.UUID((await client.get("/v1/me", headers=login)).json()["id"])
    async with ctx.sessions.begin() as session:
        await credits.adjust(session, user_id, -99, note="all but one spent")
    writer = await _key(client, login, TASKS_WRITE)
    refused = await submit(client, writer, {"operations": [{"op": "grayscale"}]})
    TALLY.attack("scopes", "402 to a tasks:write key", refused)
    assert refused.status_code == 402, refused.text
    # The price is the only number told.
    assert re.fullmatch(
        r"This task costs \d+ credits, more than the balance\. Buy credits to continue\.",
        refused.json()["detail"],
    )
