"""Administrators grant credits, or take them back, through the ledger: an `admin_adjust` entry
whose note is the reason, never a balance below zero, once per Idempotency-Key, and one audit
row per change. The command line's grant goes through the same rules and the same trail."""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import update

from pixelfleet.cli import main
from pixelfleet.context import ProcessContext
from pixelfleet.credits.service import MAX_BALANCE
from pixelfleet.models import User
from tests.admin.steps import audit_rows, id_of, sign_up_admin
from tests.api_helpers import PROBLEM, balance_of, sign_up, whole_ledger


async def _adjust(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    user_id: str,
    amount: Any,
    reason: str = "compensation for the outage",
    **headers: str,
) -> httpx.Response:
    return await client.post(
        f"/v1/admin/users/{user_id}/credits",
        headers={**admin, **headers},
        json={"amount": amount, "reason": reason},
    )


def _cli(ctx: ProcessContext, tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {
        "PIXELFLEET_DATABASE_URL": ctx.settings.resolved_database_url,
        "PIXELFLEET_DATA_DIR": str(tmp_path / "cli"),
    }
    result = CliRunner().invoke(main, ["admin", *args], env=env)
    return result.exit_code, result.output


async def test_a_grant_is_a_ledger_entry_with_the_reason_and_one_audit_row(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    alice = await sign_up(client, "alice@example.com")
    alices_id = await id_of(client, alice)

    granted = await _adjust(client, admin, alices_id, 250, **{"X-Request-ID": "req-grant-1"})
    assert granted.status_code == 201, granted.text
    body = granted.json()
    assert body == {
        "entry_id": body["entry_id"],
        "user_id": alices_id,
        "amount": 250,
        "reason": "compensation for the outage",
        "balance_after": 350,
        "created_at": body["created_at"],
    }
    assert await balance_of(client, alice) == 350
    newest = (await whole_ledger(client, alice))[0]
    assert (newest["id"], newest["kind"], newest["amount"], newest["note"]) == (
        body["entry_id"],
        "admin_adjust",
        250,
        "compensation for the outage",
    )
    [row] = await audit_rows(client, admin)
    assert row["action"] == "adjust_credits"
    assert row["admin_email"] == "root@example.com"
    assert row["admin_id"] == await id_of(client, admin)
    assert (row["target_user_id"], row["target_email"]) == (alices_id, "alice@example.com")
    assert row["reason"] == "compensation for the outage"
    assert row["details"] == {
        "amount": 250,
        "balance_after": 350,
        "ledger_entry_id": body["entry_id"],
    }
    assert row["request_id"] == "req-grant-1"


async def test_a_take_back_below_zero_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    alice = await sign_up(client, "alice@example.com")
    alices_id = await id_of(client, alice)

    refused = await _adjust(client, admin, alices_id, -101, "refund of a chargeback")
    assert refused.status_code == 409
    assert refused.headers["content-type"] == PROBLEM
    problem = refused.json()
    assert problem["type"].endswith("/balance-too-low")
    assert "At most 100 can be taken back" in problem["detail"]
    assert await balance_of(client, alice) == 100
    assert len(await whole_ledger(client, alice)) == 1
    assert await audit_rows(client, admin) == []

    taken = await _adjust(client, admin, alices_id, -100, "refund of a chargeback")
    assert taken.status_code == 201, taken.text
    assert taken.json()["balance_after"] == 0
    assert await balance_of(client, alice) == 0
    [row] = await audit_rows(client, admin)
    assert row["details"]["amount"] == -100
    assert row["details"]["balance_after"] == 0


@pytest.mark.both_backends
async def test_a_grant_is_applied_once_per_idempotency_key(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    alice = await sign_up(client, "alice@example.com")
    alices_id = await id_of(client, alice)
    key = {"Idempotency-Key": "ticket-4711"}

    first = await _adjust(client, admin, alices_id, 250, **key)
    again = await _adjust(client, admin, alices_id, 250, **key)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert await balance_of(client, alice) == 350
    [row] = await audit_rows(client, admin)
    assert row["details"]["idempotency_key"] == "ticket-4711"

    # A burst of retries of another adjustment: still once.
    burst = await asyncio.gather(
        *(
            _adjust(client, admin, alices_id, -50, "duplicate grant", **{"Idempotency-Key": "k2"})
            for _ in range(6)
        )
    )
    assert sorted(response.status_code for response in burst) == [200] * 5 + [201]
    assert len({response.json()["entry_id"] for response in burst}) == 1
    assert await balance_of(client, alice) == 300
    assert len(await audit_rows(client, admin)) == 2
    assert [entry["amount"] for entry in await whole_ledger(client, alice)] == [-50, 250, 100]


async def test_an_idempotency_key_reused_for_another_adjustment_is_refused(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    alices_id = await id_of(client, await sign_up(client, "alice@example.com"))
    bobs_id = await id_of(client, await sign_up(client, "bob@example.com"))
    key = {"Idempotency-Key": "batch-1"}
    assert (await _adjust(client, admin, alices_id, 10, **key)).status_code == 201

    for user_id, amount, reason in [
        (alices_id, 11, "compensation for the outage"),
        (alices_id, 10, "another reason"),
        (bobs_id, 10, "compensation for the outage"),
    ]:
        reused = await _adjust(client, admin, user_id, amount, reason, **key)
        assert reused.status_code == 409, reused.text
        assert reused.json()["type"].endswith("/idempotency-key-reused")

    # Keys are each administrator's own: another one's same key is a new adjustment.
    other = await sign_up_admin(client, ctx, "second@example.com")
    assert (await _adjust(client, other, bobs_id, 10, **key)).status_code == 201
    assert [row["target_email"] for row in await audit_rows(client, admin)] == [
        "bob@example.com",
        "alice@example.com",
    ]


BAD_ADJUSTMENTS: list[tuple[dict[str, Any], dict[str, str], str]] = [
    ({"amount": 0, "reason": "nothing at all"}, {}, "amount"),
    ({"amount": 1_000_001, "reason": "far too many"}, {}, "amount"),
    ({"amount": -1_000_001, "reason": "far too many"}, {}, "amount"),
    ({"amount": "5", "reason": "a string"}, {}, "amount"),
    ({"amount": 2.5, "reason": "a fraction"}, {}, "amount"),
    ({"amount": True, "reason": "a boolean"}, {}, "amount"),
    ({"amount": 10**30, "reason": "a huge number"}, {}, "amount"),
    ({"reason": "no amount"}, {}, "amount"),
    ({"amount": 5}, {}, "reason"),
    ({"amount": 5, "reason": "fine", "kind": "purchase"}, {}, "kind"),
    ({"amount": 5, "reason": "fine"}, {"Idempotency-Key": "k" * 256}, "Idempotency-Key"),
]


async def test_an_adjustment_is_checked_before_anything_changes(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    alice = await sign_up(client, "alice@example.com")
    alices_id = await id_of(client, alice)
    for body, headers, field in BAD_ADJUSTMENTS:
        answer = await client.post(
            f"/v1/admin/users/{alices_id}/credits", headers={**admin, **headers}, json=body
        )
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"] == PROBLEM
        assert [error["field"] for error in answer.json()["errors"]] == [field], body
    assert await balance_of(client, alice) == 100
    assert await audit_rows(client, admin) == []


async def test_a_balance_cannot_be_pushed_past_what_it_can_hold(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    alice = await sign_up(client, "alice@example.com")
    alices_id = await id_of(client, alice)
    async with ctx.sessions.begin() as session:
        await session.execute(
            update(User).where(User.email == "alice@example.com").values(balance=MAX_BALANCE - 5)
        )
    refused = await _adjust(client, admin, alices_id, 6)
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("/balance-too-high")
    assert await balance_of(client, alice) == MAX_BALANCE - 5
    assert (await _adjust(client, admin, alices_id, 5)).status_code == 201


async def test_every_balance_equals_its_ledger_after_grants_and_take_backs(
    client: httpx.AsyncClient, ctx: ProcessContext, tmp_path: Path
) -> None:
    admin = await sign_up_admin(client, ctx)
    people = [await sign_up(client, f"user{n}@example.com") for n in range(3)]
    ids = [await id_of(client, headers) for headers in people]
    for n, user_id in enumerate(ids):
        assert (await _adjust(client, admin, user_id, 30 * (n + 1))).status_code == 201
        assert (await _adjust(client, admin, user_id, -(10 + n))).status_code == 201
        assert (await _adjust(client, admin, user_id, -1000)).status_code == 409
    for n, (headers, user_id) in enumerate(zip(people, ids, strict=True)):
        expected = 100 + 30 * (n + 1) - (10 + n)
        assert await balance_of(client, headers) == expected
        account = (await client.get(f"/v1/admin/users/{user_id}", headers=admin)).json()
        assert account["balance"] == account["ledger_sum"] == expected

    code, output = await asyncio.to_thread(_cli, ctx, tmp_path, "audit")
    assert code == 0, output
    assert "every balance equals the sum of its ledger" in output
    assert len(await audit_rows(client, admin)) == 6


async def test_the_command_line_grant_is_audited_as_the_command_line(
    client: httpx.AsyncClient, ctx: ProcessContext, tmp_path: Path
) -> None:
    admin = await sign_up_admin(client, ctx)
    alice = await sign_up(client, "alice@example.com")

    code, output = await asyncio.to_thread(
        _cli, ctx, tmp_path, "grant", "alice@example.com", "40", "--note", "support ticket 99"
    )
    assert code == 0, output
    assert "balance is now 140" in output
    assert await balance_of(client, alice) == 140
    assert (await whole_ledger(client, alice))[0]["note"] == "support ticket 99"
    [row] = await audit_rows(client, admin)
    assert row["admin_id"] is None
    assert row["admin_email"] == f"cli:{getpass.getuser()}"
    assert (row["action"], row["reason"]) == ("adjust_credits", "support ticket 99")
    assert row["details"]["amount"] == 40
    assert row["request_id"] is None

    code, output = await asyncio.to_thread(
        _cli, ctx, tmp_path, "grant", "alice@example.com", "2000000"
    )
    assert code == 1
    assert await balance_of(client, alice) == 140
