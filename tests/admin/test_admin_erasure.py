"""Administrators erase an account with a reason (`POST /v1/admin/users/{id}/erase`), as its
owner's `DELETE /v1/me` does: its data is gone, its payments and ledger stay under an
anonymised account, and the audit trail holds one row for it, naming the account by its
anonymised email (as every earlier row about it now does). An administrator cannot erase
their own account this way, and erasing an erased account changes nothing."""

from __future__ import annotations

import uuid

import httpx
import pytest

from pixelfleet.context import ProcessContext
from tests.accounts.holdings import an_account_holding_everything
from tests.admin.steps import audit_rows, id_of, sign_up_admin
from tests.api_helpers import PROBLEM, sign_up


async def _erase(
    client: httpx.AsyncClient, admin: dict[str, str], user_id: str, reason: str = "GDPR request #9"
) -> httpx.Response:
    return await client.post(
        f"/v1/admin/users/{user_id}/erase", headers=admin, json={"reason": reason}
    )


@pytest.mark.both_backends
async def test_an_erasure_by_an_administrator_is_audited_under_the_anonymised_email(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    alice = await an_account_holding_everything(client, ctx, "alice@example.com")
    user_id = str(alice.user_id)
    deactivated = await client.post(
        f"/v1/admin/users/{user_id}/deactivate", headers=admin, json={"reason": "a complaint"}
    )
    assert deactivated.status_code == 200, deactivated.text

    erased = await _erase(client, admin, user_id)
    assert erased.status_code == 202, erased.text
    assert erased.json()["id"] == user_id
    assert erased.json()["tasks_deleted"] == 3

    anonymised = f"erased-{user_id}@erased.invalid"
    rows = await audit_rows(client, admin, target_user_id=user_id)
    assert [(row["action"], row["target_email"]) for row in rows] == [
        ("erase_user", anonymised),
        ("deactivate_user", anonymised),
    ]
    assert rows[0]["reason"] == "GDPR request #9"
    assert rows[0]["details"]["tasks_cancelled"] == 2
    account = (await client.get(f"/v1/admin/users/{user_id}", headers=admin)).json()
    assert account["email"] == anonymised
    assert account["is_active"] is False
    assert account["balance"] == account["ledger_sum"]
    assert set(account["tasks_by_status"].values()) == {0}
    assert (await client.get("/v1/me", headers=alice.headers)).status_code == 401


async def test_erasing_an_erased_account_changes_nothing_and_is_not_audited_again(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    user_id = await id_of(client, await sign_up(client, "bob@example.com"))
    first = await _erase(client, admin, user_id)
    again = await _erase(client, admin, user_id)
    assert again.status_code == 202, again.text
    assert again.json()["erased_at"] == first.json()["erased_at"]
    assert again.json()["tasks_deleted"] == 0
    assert len(await audit_rows(client, admin, action="erase_user")) == 1
    reactivated = await client.post(
        f"/v1/admin/users/{user_id}/reactivate", headers=admin, json={"reason": "by mistake"}
    )
    assert reactivated.status_code == 200
    assert reactivated.json()["is_active"] is False  # an erased account stays off


async def test_an_administrator_cannot_erase_themself_or_an_unknown_account(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    own = await _erase(client, admin, await id_of(client, admin))
    assert own.status_code == 409
    assert own.headers["content-type"] == PROBLEM
    assert own.json()["type"].endswith("/cannot-erase-self")
    assert (await client.get("/v1/me", headers=admin)).status_code == 200
    unknown = await _erase(client, admin, str(uuid.uuid4()))
    assert unknown.status_code == 404
    assert unknown.json()["type"].endswith("/user-not-found")
    assert await audit_rows(client, admin) == []


async def test_only_an_administrator_erases_accounts(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    mallory = await sign_up(client, "mallory@example.com")
    victim = await id_of(client, await sign_up(client, "victim@example.com"))
    refused = await _erase(client, mallory, victim)
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/admin-required")
