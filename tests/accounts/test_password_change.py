"""A logged-in user changes their password by proving the current one: the new one opens the
account and the old one no longer does; every other login ends at once, the caller's own goes
on through its refresh token; API keys cannot do it and are left as they are."""

from __future__ import annotations

import httpx

from tests.api_helpers import PASSWORD, PROBLEM, sign_up

NEW_PASSWORD = "amber lantern orchard 17"


async def _login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/v1/auth/token", data={"username": email, "password": password})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_new_password_opens_the_account_and_the_old_one_no_longer_does(
    client: httpx.AsyncClient,
) -> None:
    headers = await sign_up(client, "changer@example.com")
    changed = await client.post(
        "/v1/me/password",
        headers=headers,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 204, changed.text
    assert changed.content == b""

    assert (await _login(client, "changer@example.com")).status_code == 401
    assert (await _login(client, "changer@example.com", NEW_PASSWORD)).status_code == 200


async def test_every_other_login_ends_and_the_callers_own_goes_on_after_a_refresh(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client, "two-devices@example.com")
    own = (await _login(client, "two-devices@example.com")).json()
    other = (await _login(client, "two-devices@example.com")).json()
    key = await client.post(
        "/v1/me/api-keys",
        headers=_bearer(own["access_token"]),
        json={"name": "ci", "scopes": ["tasks:read"]},
    )
    assert key.status_code == 201, key.text

    changed = await client.post(
        "/v1/me/password",
        headers=_bearer(own["access_token"]),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 204, changed.text

    for tokens in (own, other):
        refused = await client.get("/v1/me", headers=_bearer(tokens["access_token"]))
        assert refused.status_code == 401
        assert refused.json()["type"].endswith("/invalid-token")
    ended = await client.post("/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert ended.status_code == 401
    goes_on = await client.post("/v1/auth/refresh", json={"refresh_token": own["refresh_token"]})
    assert goes_on.status_code == 200, goes_on.text
    me = await client.get("/v1/me", headers=_bearer(goes_on.json()["access_token"]))
    assert me.status_code == 200
    # An API key is not a login: it goes on as it was.
    assert (await client.get("/v1/tasks", headers=_bearer(key.json()["key"]))).status_code == 200


async def test_a_wrong_current_password_is_refused_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    headers = await sign_up(client, "guesser@example.com")
    refused = await client.post(
        "/v1/me/password",
        headers=headers,
        json={"current_password": "not the password", "new_password": NEW_PASSWORD},
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"].endswith("/wrong-password")
    assert [error["field"] for error in refused.json()["errors"]] == ["current_password"]

    assert (await client.get("/v1/me", headers=headers)).status_code == 200  # still logged in
    assert (await _login(client, "guesser@example.com")).status_code == 200
    assert (await _login(client, "guesser@example.com", NEW_PASSWORD)).status_code == 401


async def test_a_weak_or_unchanged_new_password_is_refused_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    headers = await sign_up(client, "weak-change@example.com")
    for new_password, problem in (("password123", "weak-password"), (PASSWORD, "validation-error")):
        refused = await client.post(
            "/v1/me/password",
            headers=headers,
            json={"current_password": PASSWORD, "new_password": new_password},
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"].endswith(f"/{problem}"), refused.json()
        assert [error["field"] for error in refused.json()["errors"]] == ["new_password"]
    assert (await _login(client, "weak-change@example.com")).status_code == 200


async def test_an_api_key_cannot_change_the_password(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "key-changer@example.com")
    key = await client.post(
        "/v1/me/api-keys",
        headers=headers,
        json={"name": "all", "scopes": ["tasks:read", "tasks:write", "credits:read"]},
    )
    refused = await client.post(
        "/v1/me/password",
        headers=_bearer(key.json()["key"]),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/insufficient-scope")
    assert (await _login(client, "key-changer@example.com")).status_code == 200
