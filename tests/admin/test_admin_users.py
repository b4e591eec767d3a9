"""Administrators list and look at accounts, and switch them off and on again with a reason.
Deactivation ends every way in (access token, refresh token, API key, password); reactivation
lets the owner log in anew. Each change leaves exactly one row in the audit trail."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from pixelfleet.context import ProcessContext
from tests.admin.steps import audit_rows, bearer, id_of, log_in, sign_up_admin, whole_list
from tests.api_helpers import PASSWORD, PROBLEM, sign_up, submit

REASON = {"reason": "abuse report #17"}


async def _deactivate(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    user_id: str,
    reason: str = "abuse report #17",
    request_id: str | None = None,
) -> httpx.Response:
    headers = {**admin, **({"X-Request-ID": request_id} if request_id else {})}
    return await client.post(
        f"/v1/admin/users/{user_id}/deactivate", headers=headers, json={"reason": reason}
    )


async def _reactivate(
    client: httpx.AsyncClient, admin: dict[str, str], user_id: str, reason: str = "appeal upheld"
) -> httpx.Response:
    return await client.post(
        f"/v1/admin/users/{user_id}/reactivate", headers=admin, json={"reason": reason}
    )


async def test_accounts_are_listed_newest_first_and_filtered_by_email_role_and_activity(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    emails = ["alice@example.com", "bob@example.com", "carol@other.org", "dave@example.com"]
    ids = {email: await id_of(client, await sign_up(client, email)) for email in emails}
    assert (await _deactivate(client, admin, ids["bob@example.com"])).status_code == 200

    async def listed(**params: str) -> list[str]:
        return [
            user["email"] for user in await whole_list(client, admin, "/v1/admin/users", params)
        ]

    assert await listed() == [*reversed(emails), "root@example.com"]
    assert await listed(email="example.com") == [
        "dave@example.com",
        "bob@example.com",
        "alice@example.com",
        "root@example.com",
    ]
    assert await listed(email="ALICE") == ["alice@example.com"]
    assert await listed(email="%") == []  # a wildcard is a plain character here
    assert await listed(email="_") == []
    assert await listed(role="admin") == ["root@example.com"]
    assert await listed(role="user", active="false") == ["bob@example.com"]
    assert await listed(active="true", email="example.com", role="user") == [
        "dave@example.com",
        "alice@example.com",
    ]
    first = (await client.get("/v1/admin/users", headers=admin)).json()["items"][0]
    assert first == {
        "id": ids["dave@example.com"],
        "email": "dave@example.com",
        "role": "user",
        "is_active": True,
        "balance": 100,
        "email_verified_at": None,
        "created_at": first["created_at"],
    }


BAD_LIST_PARAMETERS = [
    {"role": "superuser"},
    {"active": "perhaps"},
    {"limit": "0"},
    {"limit": "101"},
    {"cursor": "not-a-cursor"},
    {"cursor": "x" * 600},
    {"email": "e" * 321},
    {"email": "a\x00b"},
]


async def test_bad_list_parameters_are_a_precise_problem(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    for params in BAD_LIST_PARAMETERS:
        response = await client.get("/v1/admin/users", headers=admin, params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"][0]["field"] == next(iter(params))


async def test_an_account_is_shown_with_its_tasks_ledger_and_keys(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    alice = await sign_up(client, "alice@example.com")
    alices_id = await id_of(client, alice)
    task = await submit(client, alice, {"output": {"format": "png"}})
    assert task.status_code == 202, task.text
    await client.post(
        "/v1/me/api-keys", headers=alice, json={"name": "ci", "scopes": ["tasks:read"]}
    )

    shown = await client.get(f"/v1/admin/users/{alices_id}", headers=admin)
    assert shown.status_code == 200, shown.text
    account = shown.json()
    assert account["email"] == "alice@example.com"
    assert account["balance"] == account["ledger_sum"] == 100 - task.json()["cost"]
    assert account["tasks_by_status"] == {
        "queued": 1,
        "running": 0,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert account["usable_api_keys"] == 1


async def test_an_unknown_account_is_a_404_problem_and_a_malformed_id_a_422(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    unknown = str(uuid.uuid4())
    for method, path, body in [
        ("GET", f"/v1/admin/users/{unknown}", None),
        ("POST", f"/v1/admin/users/{unknown}/deactivate", REASON),
        ("POST", f"/v1/admin/users/{unknown}/reactivate", REASON),
        ("POST", f"/v1/admin/users/{unknown}/credits", {"amount": 5, **REASON}),
    ]:
        answer = await client.request(method, path, headers=admin, json=body)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["type"].endswith("/user-not-found")
    malformed = await client.get("/v1/admin/users/not-a-uuid", headers=admin)
    assert malformed.status_code == 422
    assert malformed.headers["content-type"] == PROBLEM
    assert await audit_rows(client, admin) == []


async def test_deactivation_ends_the_token_the_refresh_token_and_the_api_key(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    alice = await sign_up(client, "alice@example.com")
    alices_id = await id_of(client, alice)
    tokens = await log_in(client, "alice@example.com")
    key = await client.post(
        "/v1/me/api-keys", headers=alice, json={"name": "ci", "scopes": ["tasks:read"]}
    )
    alices_key = bearer(key.json()["key"])
    assert (await client.get("/v1/tasks", headers=alices_key)).status_code == 200

    answer = await _deactivate(client, admin, alices_id, request_id="req-deactivate-alice")
    assert answer.status_code == 200, answer.text
    assert answer.json()["is_active"] is False

    token_use = await client.get("/v1/me", headers=alice)
    assert token_use.status_code == 403
    assert token_use.json()["type"].endswith("/account-disabled")
    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 401
    assert (await client.get("/v1/tasks", headers=alices_key)).status_code == 401
    login = await client.post(
        "/v1/auth/token", data={"username": "alice@example.com", "password": PASSWORD}
    )
    assert login.status_code == 403

    [row] = await audit_rows(client, admin)
    assert row == {
        "id": row["id"],
        "admin_id": await id_of(client, admin),
        "admin_email": "root@example.com",
        "action": "deactivate_user",
        "target_user_id": alices_id,
        "target_email": "alice@example.com",
        "reason": "abuse report #17",
        # Two logins (sign-up's and this test's) and one key.
        "details": {"refresh_tokens_revoked": 2, "api_keys_revoked": 1},
        "request_id": "req-deactivate-alice",
        "created_at": row["created_at"],
    }


async def test_deactivating_twice_changes_nothing_the_second_time(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    alices_id = await id_of(client, await sign_up(client, "alice@example.com"))
    first = await _deactivate(client, admin, alices_id)
    again = await _deactivate(client, admin, alices_id, reason="clicked twice")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert [row["reason"] for row in await audit_rows(client, admin)] == ["abuse report #17"]


async def test_reactivation_lets_the_owner_log_in_again_but_revives_no_old_credential(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    alice = await sign_up(client, "alice@example.com")
    alices_id = await id_of(client, alice)
    old = await log_in(client, "alice@example.com")
    key = await client.post(
        "/v1/me/api-keys", headers=alice, json={"name": "ci", "scopes": ["tasks:read"]}
    )
    # All within the same second as the deactivation: the tokens' issue time cannot tell them
    # apart from tokens issued after it.
    await _deactivate(client, admin, alices_id)

    answer = await _reactivate(client, admin, alices_id)
    assert answer.status_code == 200, answer.text
    assert answer.json()["is_active"] is True
    again = await _reactivate(client, admin, alices_id, reason="clicked twice")
    assert again.status_code == 200

    for old_access in (alice, bearer(old["access_token"]), bearer(key.json()["key"])):
        refused = await client.get("/v1/tasks", headers=old_access)
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["type"].endswith("/invalid-token")
    revoked = await client.post("/v1/auth/refresh", json={"refresh_token": old["refresh_token"]})
    assert revoked.status_code == 401
    fresh = await log_in(client, "alice@example.com")
    assert (await client.get("/v1/me", headers=bearer(fresh["access_token"]))).status_code == 200
    refreshed = await client.post(
        "/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    renewed = bearer(refreshed.json()["access_token"])
    assert (await client.get("/v1/me", headers=renewed)).status_code == 200
    rows = await audit_rows(client, admin, target_user_id=alices_id)
    assert [(row["action"], row["reason"]) for row in rows] == [
        ("reactivate_user", "appeal upheld"),
        ("deactivate_user", "abuse report #17"),
    ]
    assert rows[0]["details"] == {}


async def test_an_administrator_cannot_deactivate_themself_but_another_can(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    root = await sign_up_admin(client, ctx)
    roots_id = await id_of(client, root)
    refused = await _deactivate(client, root, roots_id)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"].endswith("/cannot-deactivate-self")
    assert (await client.get("/v1/me", headers=root)).json()["is_active"] is True
    assert await audit_rows(client, root) == []

    second = await sign_up_admin(client, ctx, "second@example.com")
    assert (await _deactivate(client, second, roots_id)).status_code == 200
    assert (await client.get("/v1/admin/stats", headers=root)).status_code == 403


BAD_REASONS: list[tuple[Any, str]] = [
    (None, "body"),
    ({}, "reason"),
    ({"reason": ""}, "reason"),
    ({"reason": "   "}, "reason"),
    ({"reason": "ok"}, "reason"),
    ({"reason": "r" * 256}, "reason"),
    ({"reason": "two\nlines"}, "reason"),
    ({"reason": 42}, "reason"),
    ({"reason": "a fine reason", "notify": True}, "notify"),
]


async def test_a_status_change_needs_a_one_line_reason(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    alices_id = await id_of(client, await sign_up(client, "alice@example.com"))
    for body, field in BAD_REASONS:
        answer = await client.post(
            f"/v1/admin/users/{alices_id}/deactivate", headers=admin, json=body
        )
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"] == PROBLEM
        assert [error["field"] for error in answer.json()["errors"]] == [field], body
    assert (await client.get(f"/v1/admin/users/{alices_id}", headers=admin)).json()["is_active"]
    assert await audit_rows(client, admin) == []
