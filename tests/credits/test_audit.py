"""`pixelfleet admin audit`: a read-only check, safe on a live database, that every balance equals
the sum of its ledger. It passes after a storm of concurrent submissions and names the account
whose balance was changed behind the ledger's back."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from pixelfleet.cli import main
from pixelfleet.context import ProcessContext
from pixelfleet.settings import Settings
from tests.api_helpers import balance_of, image_bytes, sign_up, submit, whole_ledger

# Database semantics (see tests/conftest.py): on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_backends

ONE_CREDIT = {"output": {"format": "png"}}


def _audit(settings: Settings) -> tuple[int, str]:
    env = {"PIXELFLEET_DATABASE_URL": settings.resolved_database_url}
    result = CliRunner().invoke(main, ["admin", "audit"], env=env)
    return result.exit_code, result.output


async def test_two_hundred_concurrent_submissions_with_credits_for_fifty_accept_fifty(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    ctx.settings.signup_credits = 50
    headers = await sign_up(client, "storm@example.com")
    image = image_bytes("PNG", (32, 32))
    responses = await asyncio.gather(
        *(submit(client, headers, ONE_CREDIT, image) for _ in range(200))
    )
    codes = [response.status_code for response in responses]
    assert codes.count(202) == 50
    assert codes.count(402) == 150
    assert await balance_of(client, headers) == 0
    debits = [e for e in await whole_ledger(client, headers) if e["kind"] == "task_debit"]
    assert len(debits) == 50

    code, output = await asyncio.to_thread(_audit, ctx.settings)
    assert code == 0, output
    assert "every balance equals the sum of its ledger" in output


async def test_a_balance_changed_behind_the_ledger_is_named(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    await sign_up(client, "honest@example.com")
    await sign_up(client, "tampered@example.com")
    async with ctx.sessions.begin() as session:
        await session.execute(
            text("UPDATE users SET balance = balance + 7 WHERE email = 'tampered@example.com'")
        )

    code, output = await asyncio.to_thread(_audit, ctx.settings)
    assert code == 1
    assert "checked 2 accounts and 2 ledger entries" in output
    assert "tampered@example.com" in output
    assert "balance 107, ledger sum 100" in output
    assert "honest@example.com" not in output
    assert "1 account(s) off their ledger" in output
