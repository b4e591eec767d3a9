"""Small steps the administration tests repeat: make an administrator, find an account's id,
read the audit trail."""

from __future__ import annotations

from typing import Any

import httpx

from pixelfleet.accounts import service as accounts
from pixelfleet.context import ProcessContext
from tests.api_helpers import PASSWORD


async def log_in(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    """A new login's tokens (access and refresh)."""
    response = await client.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_up_admin(
    client: httpx.AsyncClient, ctx: ProcessContext, email: str = "root@example.com"
) -> dict[str, str]:
    """An administrator, made as `pixelfleet admin create-user --admin` makes one, logged in."""
    async with ctx.sessions.begin() as session:
        await accounts.register(
            session, email, PASSWORD, signup_credits=ctx.settings.signup_credits, role="admin"
        )
    return bearer((await log_in(client, email))["access_token"])


async def id_of(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    me = await client.get("/v1/me", headers=headers)
    assert me.status_code == 200, me.text
    user_id: str = me.json()["id"]
    return user_id


async def whole_list(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    path: str,
    params: dict[str, str | int] | None = None,
    *,
    page_size: int = 2,
) -> list[dict[str, Any]]:
    """Every item of a paginated admin list, following the cursor through small pages."""
    items: list[dict[str, Any]] = []
    query: dict[str, str | int] = {**(params or {}), "limit": page_size}
    while True:
        response = await client.get(path, headers=headers, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= page_size
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        query["cursor"] = page["next_cursor"]


async def audit_rows(
    client: httpx.AsyncClient, admin: dict[str, str], **params: str
) -> list[dict[str, Any]]:
    return await whole_list(client, admin, "/v1/admin/audit", dict(params))
