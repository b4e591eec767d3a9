"""Rate limits as a client meets them: a real `pixelfleet up` (limits kept in its process) and
two API replicas sharing one real Redis. A refusal is a 429 problem with a `Retry-After` that is
honest: waiting that long is enough. Refused requests change nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
import redis

from pixelfleet.api.app import create_app
from pixelfleet.bootstrap import create_context
from pixelfleet.settings import Settings
from tests.api_helpers import PASSWORD, PROBLEM, image_bytes
from tests.conftest import TEST_JWT_SECRET
from tests.hardening.tally import TALLY
from tests.harness.embedded import RunningPlatform, pixelfleet_up
from tests.harness.redis import RedisServer

PIPELINE = json.dumps({"operations": [{"op": "resize", "width": 32}], "output": {"format": "png"}})


def limits_env(**rates: str) -> dict[str, str]:
    env = {"PIXELFLEET_RATE_LIMITS_ENABLED": "true", "PIXELFLEET_JWT_SECRET": TEST_JWT_SECRET}
    env.update({f"PIXELFLEET_RATE_LIMIT_{name.upper()}": rate for name, rate in rates.items()})
    return env


def tried(response: httpx.Response, name: str) -> httpx.Response:
    return TALLY.attack("rate limits", name, response)


def assert_rate_limited(response: httpx.Response) -> int:
    """The refusal's `Retry-After`, after checking it is a proper 429 problem."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"].endswith("/rate-limited")
    assert problem["status"] == 429
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    assert f"{retry_after} s" in problem["detail"]
    return retry_after


def register(http: httpx.Client, email: str, **kwargs: object) -> httpx.Response:
    return http.post(
        "/v1/auth/register",
        json={"email": email, "password": PASSWORD},
        **kwargs,  # type: ignore[arg-type]
    )


def login(http: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return http.post("/v1/auth/token", data={"username": email, "password": password})


def bearer(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


# One server for the tests below that can share it: each comes from an address of its own (the
# server trusts the loopback proxy's X-Forwarded-For) and uses accounts of its own, so that no
# allowance one spends is another's.
SHARED_LIMITS = limits_env(
    login_per_account="3/minute",
    register_per_address="3/hour",
    tasks_per_user="2/minute",
    payments_per_user="1/minute",
    assets_per_user="2/minute",
    presets_per_user="2/minute",
) | {"PIXELFLEET_TRUSTED_PROXIES": "127.0.0.1"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    data_dir = tmp_path_factory.mktemp("rate-limits") / "data"
    with pixelfleet_up(data_dir, env=SHARED_LIMITS, workers=1) as running:
        yield running


def client_at(platform: RunningPlatform, address: str) -> httpx.Client:
    """A client of the shared server, seen as coming from `address` (through the proxy)."""
    return httpx.Client(
        base_url=platform.base_url, timeout=30, headers={"X-Forwarded-For": address}
    )


def test_guessing_one_accounts_password_is_stopped_while_others_log_in(
    platform: RunningPlatform,
) -> None:
    with client_at(platform, "203.0.113.1") as http:
        register(http, "alice@example.com")
        register(http, "bob@example.com")
        for guess in ("letmein1", "hunter22", "alice2026"):
            assert tried(login(http, "alice@example.com", guess), "guess").status_code == 401
        # Even the right password waits now: the guesser cannot tell a hit from a miss.
        assert_rate_limited(tried(login(http, "ALICE@example.com"), "right password, too late"))
        assert login(http, "bob@example.com").status_code == 200


def test_guessing_the_current_password_with_a_stolen_token_is_stopped_like_a_login(
    platform: RunningPlatform,
) -> None:
    with client_at(platform, "203.0.113.9") as http:
        register(http, "carol@example.com")
        stolen = bearer(login(http, "carol@example.com"))  # the account's one allowed login
        for guess in ("letmein1", "hunter22"):
            change = {"current_password": guess, "new_password": "amber lantern orchard 17"}
            answer = http.post("/v1/me/password", headers=stolen, json=change)
            assert tried(answer, "guess").status_code == 403
        right = {"current_password": PASSWORD, "new_password": "amber lantern orchard 17"}
        assert_rate_limited(http.post("/v1/me/password", headers=stolen, json=right))
        assert_rate_limited(login(http, "carol@example.com"))


def test_guessing_the_password_to_erase_the_account_is_stopped_like_a_login(
    platform: RunningPlatform,
) -> None:
    with client_at(platform, "203.0.113.10") as http:
        register(http, "dora@example.com")
        stolen = bearer(login(http, "dora@example.com"))  # the account's one allowed login
        for guess in ("letmein1", "hunter22"):
            answer = http.request("DELETE", "/v1/me", headers=stolen, json={"password": guess})
            assert tried(answer, "guess").status_code == 403
        right = {"password": PASSWORD}
        assert_rate_limited(http.request("DELETE", "/v1/me", headers=stolen, json=right))
        assert http.get("/v1/me", headers=stolen).status_code == 200  # not erased


def test_one_address_cannot_register_accounts_in_bulk(platform: RunningPlatform) -> None:
    with client_at(platform, "203.0.113.2") as http:
        answers = [
            tried(register(http, f"bulk{i}@example.com"), "bulk registration").status_code
            for i in range(5)
        ]
        assert answers[:3] == [202, 202, 202]
        assert_rate_limited(register(http, "one-more@example.com"))
        assert login(http, "bulk3@example.com").status_code == 401  # refused means not made
        assert login(http, "bulk2@example.com").status_code == 200


def test_a_flood_of_submissions_is_refused_without_a_debit(platform: RunningPlatform) -> None:
    with client_at(platform, "203.0.113.3") as http:
        register(http, "flood@example.com")
        register(http, "calm@example.com")
        flood = bearer(login(http, "flood@example.com"))
        image = image_bytes("PNG", (48, 48))

        def submit(headers: dict[str, str]) -> httpx.Response:
            return http.post(
                "/v1/tasks",
                headers=headers,
                files={"file": ("a.png", image, "image/png")},
                data={"pipeline": PIPELINE},
            )

        accepted = [submit(flood), submit(flood)]
        assert [r.status_code for r in accepted] == [202, 202]
        assert_rate_limited(tried(submit(flood), "task flood"))
        cost = accepted[0].json()["cost"]
        assert http.get("/v1/me", headers=flood).json()["balance"] == 100 - 2 * cost
        tasks = http.get("/v1/tasks", headers=flood).json()["items"]
        assert len(tasks) == 2
        # Another user is not held back by the flood.
        assert submit(bearer(login(http, "calm@example.com"))).status_code == 202
        # Payments have their own allowance (this server has no Razorpay keys: 503 first).
        order = {"pack_id": "starter"}
        assert http.post("/v1/payments/orders", headers=flood, json=order).status_code == 503
        assert_rate_limited(
            tried(http.post("/v1/payments/orders", headers=flood, json=order), "payment flood")
        )


def test_a_flood_of_asset_uploads_and_preset_writes_is_refused_and_stores_nothing(
    platform: RunningPlatform,
) -> None:
    with client_at(platform, "203.0.113.4") as http:
        register(http, "stash@example.com")
        register(http, "calm-stash@example.com")
        stash = bearer(login(http, "stash@example.com"))
        image = image_bytes("PNG", (48, 48))

        def upload(headers: dict[str, str]) -> httpx.Response:
            return http.post("/v1/assets", headers=headers, files={"file": ("a.png", image)})

        assert [upload(stash).status_code for _ in range(2)] == [201, 201]
        assert_rate_limited(tried(upload(stash), "asset flood"))
        assert len(http.get("/v1/assets", headers=stash).json()["items"]) == 2

        pipeline = json.loads(PIPELINE)
        created = http.post("/v1/presets", headers=stash, json={"name": "a", "pipeline": pipeline})
        replaced = http.put("/v1/presets/a", headers=stash, json={"pipeline": pipeline})
        assert (created.status_code, replaced.status_code) == (201, 200)
        flood = http.put("/v1/presets/b", headers=stash, json={"pipeline": pipeline})
        assert_rate_limited(tried(flood, "preset flood"))
        names = [p["name"] for p in http.get("/v1/presets", headers=stash).json()["items"]]
        assert names == ["a"]
        # Reading is not limited, and another account has its own allowance.
        assert http.get("/v1/presets/a", headers=stash).status_code == 200
        assert upload(bearer(login(http, "calm-stash@example.com"))).status_code == 201


def test_behind_a_trusted_proxy_each_client_address_has_its_own_allowance(
    platform: RunningPlatform,
) -> None:
    with httpx.Client(base_url=platform.base_url, timeout=30) as http:
        first = {"X-Forwarded-For": "203.0.113.7"}
        for i in range(3):
            assert register(http, f"a{i}@example.com", headers=first).status_code == 202
        assert_rate_limited(register(http, "a3@example.com", headers=first))
        second = {"X-Forwarded-For": "203.0.113.8"}
        assert register(http, "b0@example.com", headers=second).status_code == 202


@pytest.mark.parametrize(
    "untrusting",
    [limits_env(register_per_address="2/hour") | {"PIXELFLEET_TRUSTED_PROXIES": "192.0.2.1"}],
    indirect=True,
)
def test_a_forged_forwarded_for_from_an_untrusted_peer_changes_nothing(
    untrusting: RunningPlatform,
) -> None:
    with httpx.Client(base_url=untrusting.base_url, timeout=30) as http:
        answers = [
            tried(
                register(
                    http, f"spoof{i}@example.com", headers={"X-Forwarded-For": f"198.51.100.{i}"}
                ),
                "forged X-Forwarded-For",
            ).status_code
            for i in range(3)
        ]
        assert answers[:2] == [202, 202]
        assert answers[2] == 429


@pytest.fixture
def untrusting(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningPlatform]:
    """A server of its own: it trusts a proxy that is not the test's address."""
    with pixelfleet_up(tmp_path / "data", env=request.param, workers=1) as running:
        yield running


# Two API replicas on one Redis share their allowances.


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
async def replicas(
    database_url: str, tmp_path: Path, redis_server: RedisServer
) -> AsyncIterator[list[httpx.AsyncClient]]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        jwt_secret=TEST_JWT_SECRET,
        redis_url=redis_server.url,
        rate_limit_login_per_account="3/minute",
        rate_limit_register_per_address="1/second",
    )
    with redis.Redis.from_url(redis_server.url) as fresh:
        fresh.flushall()  # each test starts with full allowances
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(2):
            ctx = create_context(settings)
            stack.push_async_callback(ctx.close)
            transport = httpx.ASGITransport(app=create_app(ctx=ctx))
            client = httpx.AsyncClient(transport=transport, base_url="http://pixelfleet.test")
            clients.append(await stack.enter_async_context(client))
        yield clients


async def test_replicas_on_one_redis_share_an_accounts_login_allowance(
    replicas: list[httpx.AsyncClient],
) -> None:
    one, two = replicas
    await one.post("/v1/auth/register", json={"email": "eve@example.com", "password": PASSWORD})
    form = {"username": "eve@example.com", "password": "not it at all"}
    for replica in (one, two, one):
        assert tried(await replica.post("/v1/auth/token", data=form), "guess").status_code == 401
    assert_rate_limited(tried(await two.post("/v1/auth/token", data=form), "other replica"))


async def test_waiting_the_retry_after_is_enough(replicas: list[httpx.AsyncClient]) -> None:
    one, two = replicas
    body = {"email": "first@example.com", "password": PASSWORD}
    assert (await one.post("/v1/auth/register", json=body)).status_code == 202
    refused = await two.post("/v1/auth/register", json={**body, "email": "second@example.com"})
    wait = assert_rate_limited(refused)
    await asyncio.sleep(wait)
    later = await two.post("/v1/auth/register", json={**body, "email": "second@example.com"})
    assert later.status_code == 202


async def test_without_redis_the_limits_step_aside_rather_than_lock_everyone_out(
    replicas: list[httpx.AsyncClient], redis_server: RedisServer
) -> None:
    one, _ = replicas
    await one.post("/v1/auth/register", json={"email": "ok@example.com", "password": PASSWORD})
    redis_server.halt()
    try:
        form = {"username": "ok@example.com", "password": PASSWORD}
        answers = [(await one.post("/v1/auth/token", data=form)).status_code for _ in range(5)]
        assert answers == [200] * 5
    finally:
        redis_server.resume()
