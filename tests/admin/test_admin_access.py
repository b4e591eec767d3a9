"""Only an administrator's interactive login reaches the administration: every `/v1/admin` route
the OpenAPI document lists refuses a caller without a credential (401), a user who is not an
administrator (403 `admin-required`), and any API key, an administrator's too (403), and the
refusals change nothing."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import update

from pixelfleet.context import ProcessContext
from pixelfleet.models import User
from tests.admin.steps import audit_rows, bearer, id_of, sign_up_admin
from tests.api_helpers import PROBLEM, balance_of, sign_up

ALL_KEY_SCOPES = ["tasks:read", "tasks:write", "credits:read"]


def _body(path: str) -> dict[str, Any]:
    """A body the route would accept, so that only the caller can be the reason for a refusal."""
    if path.endswith("/credits"):
        return {"json": {"amount": 5, "reason": "checking who may do this"}}
    if path.endswith(("/deactivate", "/reactivate", "/erase")):
        return {"json": {"reason": "checking who may do this"}}
    return {}


async def _api_key(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, str]:
    created = await client.post(
        "/v1/me/api-keys", headers=headers, json={"name": "robot", "scopes": ALL_KEY_SCOPES}
    )
    assert created.status_code == 201, created.text
    return bearer(created.json()["key"])


async def test_only_an_administrators_login_reaches_the_admin_routes(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    alice = await sign_up(client, "alice@example.com")
    alices_id = await id_of(client, alice)
    callers: list[tuple[str, dict[str, str], int, str]] = [
        ("nobody", {}, 401, "/unauthorized"),
        ("a user", alice, 403, "/admin-required"),
        ("a user's API key", await _api_key(client, alice), 403, "/admin-required"),
        ("an administrator's API key", await _api_key(client, admin), 403, "/insufficient-scope"),
    ]

    paths: dict[str, dict[str, Any]] = (await client.get("/openapi.json")).json()["paths"]
    tried: set[str] = set()
    for path, operations in sorted(paths.items()):
        if not path.startswith("/v1/admin/"):
            continue
        url = re.sub(r"{user_id}", alices_id, path)
        for method in operations:
            tried.add(f"{method.upper()} {path}")
            for who, headers, status, problem in callers:
                answer = await client.request(method.upper(), url, headers=headers, **_body(path))
                assert answer.status_code == status, (who, method, path, answer.text)
                assert answer.headers["content-type"] == PROBLEM
                assert answer.json()["type"].endswith(problem), (who, method, path)

    assert tried == {
        "GET /v1/admin/users",
        "GET /v1/admin/users/{user_id}",
        "POST /v1/admin/users/{user_id}/deactivate",
        "POST /v1/admin/users/{user_id}/reactivate",
        "POST /v1/admin/users/{user_id}/erase",
        "POST /v1/admin/users/{user_id}/credits",
        "GET /v1/admin/tasks",
        "GET /v1/admin/stats",
        "GET /v1/admin/audit",
    }
    # Nothing was changed, nothing was audited.
    assert await audit_rows(client, admin) == []
    assert await balance_of(client, alice) == 100
    assert (await client.get(f"/v1/admin/users/{alices_id}", headers=admin)).json()["is_active"]


async def test_a_demoted_administrator_loses_the_admin_routes_at_once(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    """The role is read from the account on every request, not from the token."""
    root = await sign_up_admin(client, ctx)
    other = await sign_up_admin(client, ctx, "second@example.com")
    assert (await client.get("/v1/admin/stats", headers=other)).status_code == 200
    async with ctx.sessions.begin() as session:
        await session.execute(
            update(User).where(User.email == "second@example.com").values(role="user")
        )
    refused = await client.get("/v1/admin/stats", headers=other)
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/admin-required")
    assert (await client.get("/v1/admin/stats", headers=root)).status_code == 200
