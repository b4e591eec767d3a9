"""What an operator reads: everyone's tasks, the installation's numbers on one screen (which add
up), and the audit trail, newest first. Reading is not a change: it is not audited."""

from __future__ import annotations

import uuid

import httpx

from pixelfleet.context import ProcessContext
from pixelfleet.models import Payment
from tests.admin.steps import audit_rows, id_of, sign_up_admin, whole_list
from tests.api_helpers import PROBLEM, balance_of, image_bytes, sign_up, submit

ONE_CREDIT = {"output": {"format": "png"}}


async def _submitted(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await submit(client, headers, ONE_CREDIT, image_bytes("PNG", (16, 16)))
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


async def test_everyones_tasks_are_listed_newest_first_by_status_and_account(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    alice = await sign_up(client, "alice@example.com")
    bob = await sign_up(client, "bob@example.com")
    alices_id, bobs_id = await id_of(client, alice), await id_of(client, bob)
    submitted = [await _submitted(client, who) for who in (alice, bob, alice, bob, alice)]
    cancelled = await client.delete(f"/v1/tasks/{submitted[2]}", headers=alice)
    assert cancelled.status_code == 200, cancelled.text

    async def listed(**params: str) -> list[str]:
        return [task["id"] for task in await whole_list(client, admin, "/v1/admin/tasks", params)]

    assert await listed() == list(reversed(submitted))
    assert await listed(user_id=bobs_id) == [submitted[3], submitted[1]]
    assert await listed(status="cancelled") == [submitted[2]]
    assert await listed(status="queued", user_id=alices_id) == [submitted[4], submitted[0]]
    assert await listed(status="succeeded") == []
    newest = (await client.get("/v1/admin/tasks", headers=admin)).json()["items"][0]
    assert newest["user_id"] == alices_id
    assert (newest["status"], newest["cost"]) == ("queued", 1)
    assert newest["source"] == {
        "format": "png",
        "width": 16,
        "height": 16,
        "bytes": newest["source"]["bytes"],
    }


async def test_bad_task_list_parameters_are_a_precise_problem(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    for params in (
        {"status": "exploded"},
        {"user_id": "alice"},
        {"limit": "-1"},
        {"cursor": "%%%"},
    ):
        answer = await client.get("/v1/admin/tasks", headers=admin, params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.headers["content-type"] == PROBLEM


async def test_the_stats_add_up(client: httpx.AsyncClient, ctx: ProcessContext) -> None:
    admin = await sign_up_admin(client, ctx)
    alice = await sign_up(client, "alice@example.com")
    bob = await sign_up(client, "bob@example.com")
    alices_id, bobs_id = await id_of(client, alice), await id_of(client, bob)
    tasks = [await _submitted(client, alice) for _ in range(3)] + [await _submitted(client, bob)]
    assert (await client.delete(f"/v1/tasks/{tasks[0]}", headers=alice)).status_code == 200
    reason = {"reason": "for the numbers"}
    for path, body in [
        (f"/v1/admin/users/{alices_id}/credits", {"amount": 25, **reason}),
        (f"/v1/admin/users/{bobs_id}/credits", {"amount": -9, **reason}),
        (f"/v1/admin/users/{bobs_id}/deactivate", reason),
    ]:
        assert (await client.post(path, headers=admin, json=body)).status_code in {200, 201}
    async with ctx.sessions.begin() as session:
        session.add_all(
            [
                Payment(
                    user_id=uuid.UUID(alices_id),
                    pack_id="starter",
                    credits=500,
                    amount=49900,
                    currency="INR",
                    status=state,
                    order_id=f"order_{state}",
                )
                for state in ("paid", "created")
            ]
        )

    response = await client.get("/v1/admin/stats", headers=admin)
    assert response.status_code == 200, response.text
    stats = response.json()
    assert stats["users"] == {"total": 3, "active": 2, "inactive": 1, "admins": 1}
    assert stats["tasks"] == {
        "total": 4,
        "by_status": {"queued": 3, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 1},
    }
    by_kind = stats["credits"]["by_kind"]
    assert by_kind["grant"] == {"entries": 3, "amount": 300}
    assert by_kind["task_debit"] == {"entries": 4, "amount": -4}
    assert by_kind["task_refund"] == {"entries": 1, "amount": 1}
    assert by_kind["admin_adjust"] == {"entries": 2, "amount": 16}
    assert by_kind["purchase"] == by_kind["purchase_reversal"] == {"entries": 0, "amount": 0}
    balances = [await balance_of(client, alice), 100 - 1 - 9, await balance_of(client, admin)]
    assert (
        stats["credits"]["outstanding"]
        == sum(balances)
        == sum(kind["amount"] for kind in by_kind.values())
    )
    payments = stats["payments"]
    assert payments["total"] == 2 == sum(state["count"] for state in payments["by_status"].values())
    assert payments["by_status"]["paid"] == {"count": 1, "credits": 500, "amounts": {"INR": 49900}}
    assert payments["by_status"]["refunded"] == {"count": 0, "credits": 0, "amounts": {}}
    assert stats["admin_actions"] == 3 == len(await audit_rows(client, admin))


async def test_the_audit_trail_is_newest_first_paginated_and_filtered(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    alices_id = await id_of(client, await sign_up(client, "alice@example.com"))
    bobs_id = await id_of(client, await sign_up(client, "bob@example.com"))
    changes = [
        (f"/v1/admin/users/{alices_id}/credits", {"amount": 5, "reason": "first"}),
        (f"/v1/admin/users/{bobs_id}/deactivate", {"reason": "second"}),
        (f"/v1/admin/users/{alices_id}/credits", {"amount": -5, "reason": "third"}),
        (f"/v1/admin/users/{bobs_id}/reactivate", {"reason": "fourth"}),
        (f"/v1/admin/users/{alices_id}/deactivate", {"reason": "fifth"}),
    ]
    for n, (path, body) in enumerate(changes):
        answer = await client.post(
            path, headers={**admin, "X-Request-ID": f"change-{n}"}, json=body
        )
        assert answer.status_code in {200, 201}, answer.text

    rows = await audit_rows(client, admin)
    assert [row["reason"] for row in rows] == ["fifth", "fourth", "third", "second", "first"]
    assert [row["request_id"] for row in rows] == [f"change-{n}" for n in (4, 3, 2, 1, 0)]
    assert [row["reason"] for row in await audit_rows(client, admin, action="adjust_credits")] == [
        "third",
        "first",
    ]
    assert [row["action"] for row in await audit_rows(client, admin, target_user_id=bobs_id)] == [
        "reactivate_user",
        "deactivate_user",
    ]
    assert await audit_rows(client, admin, action="reactivate_user", target_user_id=alices_id) == []

    # The reads above changed nothing, so they left no row.
    for path in [
        "/v1/admin/users",
        f"/v1/admin/users/{alices_id}",
        "/v1/admin/tasks",
        "/v1/admin/stats",
    ]:
        assert (await client.get(path, headers=admin)).status_code == 200
    assert len(await audit_rows(client, admin)) == 5

    for params in [{"action": "drop_tables"}, {"target_user_id": "bob"}, {"cursor": "e30"}]:
        answer = await client.get("/v1/admin/audit", headers=admin, params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.headers["content-type"] == PROBLEM
