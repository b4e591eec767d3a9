"""A forgotten password is reset by mail: asking answers the same for any email, and mails a
link only to an account; the link's token works once and for a limited time, sets the new
password, and ends every login from before (access and refresh tokens alike); a password change
ends the links asked for before it; the upkeep forgets expired links. No token is ever
written to a log. (Mail is the embedded default here: .eml files under the data directory;
tests/mail sends through a real SMTP server.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from pixelfleet.context import ProcessContext
from pixelfleet.db import utcnow
from pixelfleet.jobs.maintenance import forget_expired_logins
from pixelfleet.models import OutboundMail, PasswordReset, User
from pixelfleet.settings import Settings
from tests.api_helpers import PASSWORD, PROBLEM, sign_up
from tests.mail.letters import html_of, link_in, mailed, text_of, token_in
from tests.observability.test_request_id import JsonLines, json_lines_logged

NEW_PASSWORD = "amber lantern orchard 17"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"public_url": "https://img.example", "product_name": "Acme Images"}
    )


@pytest.fixture
def json_log() -> Iterator[JsonLines]:
    with json_lines_logged() as lines:
        yield lines


async def _ask(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post("/v1/auth/password-reset", json={"email": email})


async def _confirm(client: httpx.AsyncClient, token: str, password: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": password}
    )


async def _login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/v1/auth/token", data={"username": email, "password": password})


async def test_asking_answers_the_same_for_any_email_and_mails_only_an_account(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    await sign_up(client, "forgetful@example.com")
    known = await _ask(client, "Forgetful@Example.com")
    unknown = await _ask(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()

    [letter] = await mailed(ctx)
    assert letter["To"] == "forgetful@example.com"
    assert letter["Subject"] == "Reset your Acme Images password"
    assert letter["Auto-Submitted"] == "auto-generated"
    assert "List-Unsubscribe" not in letter
    link = link_in(letter)
    assert urlsplit(link)[:3] == ("https", "img.example", "/reset-password")
    assert "30 minutes" in text_of(letter)
    assert link.replace("&", "&amp;") in html_of(letter)


async def test_the_mailed_link_sets_the_new_password_and_ends_every_login(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "reset@example.com")
    login = (await _login(client, "reset@example.com", PASSWORD)).json()
    await _ask(client, "reset@example.com")
    [letter] = await mailed(ctx)

    reset = await _confirm(client, token_in(letter), NEW_PASSWORD)
    assert reset.status_code == 204, reset.text

    assert (await _login(client, "reset@example.com", PASSWORD)).status_code == 401
    assert (await _login(client, "reset@example.com", NEW_PASSWORD)).status_code == 200
    for access in (headers, {"Authorization": f"Bearer {login['access_token']}"}):
        assert (await client.get("/v1/me", headers=access)).status_code == 401
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": login["refresh_token"]})
    assert refresh.status_code == 401


async def test_a_link_works_once_and_every_earlier_link_ends_with_it(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    await sign_up(client, "twice@example.com")
    await _ask(client, "twice@example.com")
    await _ask(client, "twice@example.com")
    first, second = await mailed(ctx)

    assert (await _confirm(client, token_in(second), NEW_PASSWORD)).status_code == 204
    for used in (second, first):
        again = await _confirm(client, token_in(used), "another long passphrase 9")
        assert again.status_code == 400
        assert again.headers["content-type"] == PROBLEM
        assert again.json()["type"].endswith("/reset-link-invalid")
    assert (await _login(client, "twice@example.com", NEW_PASSWORD)).status_code == 200


async def test_an_expired_or_made_up_link_is_refused(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    await sign_up(client, "late@example.com")
    await _ask(client, "late@example.com")
    [letter] = await mailed(ctx)
    async with ctx.sessions.begin() as session:
        await session.execute(
            update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1))
        )

    for token in (token_in(letter), "made-up-token"):
        refused = await _confirm(client, token, NEW_PASSWORD)
        assert refused.status_code == 400
        assert refused.json()["type"].endswith("/reset-link-invalid")
    assert (await _login(client, "late@example.com", PASSWORD)).status_code == 200


async def test_a_weak_new_password_is_refused_and_the_link_still_works(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    await sign_up(client, "weak-reset@example.com")
    await _ask(client, "weak-reset@example.com")
    [letter] = await mailed(ctx)

    weak = await _confirm(client, token_in(letter), "password123")
    assert weak.status_code == 422
    assert [error["field"] for error in weak.json()["errors"]] == ["new_password"]
    assert (await _confirm(client, token_in(letter), NEW_PASSWORD)).status_code == 204


async def test_a_disabled_account_is_mailed_nothing(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    await sign_up(client, "disabled@example.com")
    async with ctx.sessions.begin() as session:
        await session.execute(update(User).values(is_active=False))
    assert (await _ask(client, "disabled@example.com")).status_code == 202
    assert await mailed(ctx) == []


async def test_no_log_line_carries_a_reset_token(
    client: httpx.AsyncClient, ctx: ProcessContext, json_log: JsonLines
) -> None:
    await sign_up(client, "quiet-reset@example.com")
    await _ask(client, "quiet-reset@example.com")
    [letter] = await mailed(ctx)
    token = token_in(letter)
    assert (await _confirm(client, token, NEW_PASSWORD)).status_code == 204

    assert any("mail to quiet-reset@example.com" in line for line in json_log.lines)
    assert [line for line in json_log.lines if token in line] == []


async def test_a_password_change_ends_the_reset_links_asked_for_before(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "changed-mind@example.com")
    await _ask(client, "changed-mind@example.com")
    changed = await client.post(
        "/v1/me/password",
        headers=headers,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 204
    reset, _notice = await mailed(ctx)

    refused = await _confirm(client, token_in(reset), "another long passphrase 9")
    assert refused.status_code == 400
    assert (await _login(client, "changed-mind@example.com", NEW_PASSWORD)).status_code == 200


async def test_the_upkeep_forgets_expired_links_and_long_settled_letters(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    await sign_up(client, "tidy@example.com")
    await _ask(client, "tidy@example.com")
    await _ask(client, "tidy@example.com")
    assert len(await mailed(ctx)) == 2
    long_ago = utcnow() - timedelta(days=31)
    async with ctx.sessions.begin() as session:
        await session.execute(
            update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.execute(update(OutboundMail).values(created_at=long_ago))
        # One letter still waits for its server: it is kept, however old.
        waiting = (await session.scalars(select(OutboundMail))).first()
        assert waiting is not None
        waiting.state = "pending"

    assert await forget_expired_logins(ctx) == 3
    async with ctx.read_sessions() as session:
        assert list(await session.scalars(select(PasswordReset))) == []
        [kept] = list(await session.scalars(select(OutboundMail)))
    assert kept.state == "pending"
