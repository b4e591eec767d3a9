"""Where the server requires verified emails (`PIXELFLEET_REQUIRE_EMAIL_VERIFICATION`), a new
account is mailed a link at sign-up and may log in, but not submit tasks, sign image URLs or
pay until it opens the link (403 `email-not-verified`); it may ask for a new link, a limited
number of times. Opening the link needs no login, and opening it twice changes nothing. A
forged or foreign token is refused. An account an operator made (`pixelfleet admin
create-user`) counts as confirmed. Without the setting nobody is mailed and nothing waits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import jwt
import pytest
from click.testing import CliRunner

from pixelfleet.cli import main
from pixelfleet.context import ProcessContext
from pixelfleet.settings import Settings
from tests.api_helpers import PASSWORD, PROBLEM, sign_up, submit
from tests.mail.letters import link_in, mailed, token_in


@pytest.fixture
def required() -> bool:
    return True


@pytest.fixture
def settings(settings: Settings, required: bool) -> Settings:
    return settings.model_copy(update={"require_email_verification": required})


async def _verify(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/v1/auth/verify-email", json={"token": token})


async def test_a_new_account_is_mailed_a_link_and_waits_for_it_before_spending(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "newcomer@example.com")
    [letter] = await mailed(ctx)
    assert letter["To"] == "newcomer@example.com"
    assert "/verify-email?token=" in link_in(letter)
    assert (await client.get("/v1/me", headers=headers)).json()["email_verified_at"] is None

    refusals = [
        await submit(client, headers, {"operations": [{"op": "grayscale"}]}),
        await client.post("/v1/payments/orders", headers=headers, json={"pack_id": "starter"}),
        await client.post(
            "/v1/image-urls",
            headers=headers,
            json={"source": {"asset": "00000000-0000-0000-0000-000000000001"}, "preset": "x"},
        ),
    ]
    for refused in refusals:
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["type"].endswith("/email-not-verified")
    assert (await client.get("/v1/credits", headers=headers)).json()["balance"] == 100

    assert (await _verify(client, token_in(letter))).status_code == 204
    assert (await _verify(client, token_in(letter))).status_code == 204  # twice: no change
    me = (await client.get("/v1/me", headers=headers)).json()
    assert me["email_verified_at"] is not None
    accepted = await submit(client, headers, {"operations": [{"op": "grayscale"}]})
    assert accepted.status_code == 202, accepted.text


async def test_a_new_link_can_be_asked_for_and_either_link_works(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "lost-mail@example.com")
    resent = await client.post("/v1/me/email-verification", headers=headers)
    assert resent.status_code == 202, resent.text
    first, second = await mailed(ctx)
    assert first["To"] == second["To"] == "lost-mail@example.com"
    assert (await _verify(client, token_in(second))).status_code == 204

    # Once verified, asking again mails nothing.
    assert (await client.post("/v1/me/email-verification", headers=headers)).status_code == 202
    assert len(await mailed(ctx)) == 2


async def test_a_forged_or_foreign_token_is_refused(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "forger@example.com")
    [letter] = await mailed(ctx)
    claims = jwt.decode(token_in(letter), options={"verify_signature": False})
    forged = jwt.encode(claims, "a key that is not the key of this server", algorithm="HS256")
    access_token = headers["Authorization"].removeprefix("Bearer ")
    for token in (forged, access_token, "not-a-token"):
        refused = await _verify(client, token)
        assert refused.status_code == 400, refused.text
        assert refused.json()["type"].endswith("/verification-link-invalid")
    me = (await client.get("/v1/me", headers=headers)).json()
    assert me["email_verified_at"] is None


async def test_signing_up_with_a_taken_email_mails_its_owner_nothing(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    await sign_up(client, "taken@example.com")
    again = await client.post(
        "/v1/auth/register", json={"email": "taken@example.com", "password": "some other pass 5"}
    )
    assert again.status_code == 202
    assert len(await mailed(ctx)) == 1


@pytest.mark.parametrize("required", [False])
async def test_without_the_setting_nobody_is_mailed_and_nothing_waits(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "trusted@example.com")
    accepted = await submit(client, headers, {"operations": [{"op": "grayscale"}]})
    assert accepted.status_code == 202, accepted.text
    assert await mailed(ctx) == []


async def test_an_account_an_operator_made_counts_as_confirmed(
    client: httpx.AsyncClient, ctx: ProcessContext, tmp_path: Path
) -> None:
    env = {
        "PIXELFLEET_DATABASE_URL": ctx.settings.resolved_database_url,
        "PIXELFLEET_DATA_DIR": str(tmp_path / "cli"),
    }
    made = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["admin", "create-user", "made@example.com", "--password-stdin"],
        input=f"{PASSWORD}\n",
        env=env,
    )
    assert made.exit_code == 0, made.output
    token = await client.post(
        "/v1/auth/token", data={"username": "made@example.com", "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert (await client.get("/v1/me", headers=headers)).json()["email_verified_at"] is not None
    accepted = await submit(client, headers, {"operations": [{"op": "grayscale"}]})
    assert accepted.status_code == 202, accepted.text
    assert await mailed(ctx) == []
