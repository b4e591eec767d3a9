"""Accounts through the HTTP API: registration, login, rotating refresh tokens, logout."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy import select, update

from pixelfleet.accounts import service as accounts
from pixelfleet.context import ProcessContext
from pixelfleet.db import utcnow
from pixelfleet.models import RefreshToken, User
from tests.admin.steps import sign_up_admin
from tests.api_helpers import PASSWORD, PROBLEM, sign_up, submit
from tests.conftest import TEST_JWT_SECRET


async def test_registration_creates_an_account_with_the_signup_credits(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/auth/register", json={"email": "Ada@Example.com", "password": PASSWORD}
    )
    assert response.status_code == 202
    assert response.json()["email"] == "ada@example.com"
    assert "password" not in response.text
    tokens = await _login(client, "ada@example.com")
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["email"] == "ada@example.com"
    assert me.json()["balance"] == 100
    assert me.json()["role"] == "user"


async def test_registering_a_taken_email_answers_as_a_new_one_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    first = await client.post(
        "/v1/auth/register", json={"email": "bob@example.com", "password": PASSWORD}
    )
    again = await client.post(
        "/v1/auth/register", json={"email": "BOB@example.com", "password": "another fine phrase"}
    )
    fresh = await client.post(
        "/v1/auth/register", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    # Nothing tells a taken email from a free one: same status, headers and body shape.
    assert first.status_code == again.status_code == fresh.status_code == 202
    assert again.json() == {**first.json(), "email": "bob@example.com"}
    assert again.json()["detail"] == fresh.json()["detail"]
    assert set(again.headers) == set(fresh.headers)
    # The account keeps its own password; the second one opens nothing.
    await _login(client, "bob@example.com")
    hijack = await client.post(
        "/v1/auth/token", data={"username": "bob@example.com", "password": "another fine phrase"}
    )
    assert hijack.status_code == 401


@pytest.mark.parametrize(
    "password",
    ["password123", "qwertyuiop", "iloveyou2", "P@ssw0rd123", "aaaaaaaaaaaa", "12345678910"],
)
async def test_a_breached_or_guessable_password_is_refused_with_advice(
    client: httpx.AsyncClient, password: str
) -> None:
    response = await client.post(
        "/v1/auth/register", json={"email": "carol@example.com", "password": password}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"].endswith("/weak-password")
    assert [error["field"] for error in problem["errors"]] == ["password"]
    assert "guess" in problem["detail"] or "breach" in problem["detail"]
    login = await client.post(
        "/v1/auth/token", data={"username": "carol@example.com", "password": password}
    )
    assert login.status_code == 401  # no account was made


async def test_a_password_made_of_the_email_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/register",
        json={"email": "dolores.umbridge@example.com", "password": "dolores.umbridge"},
    )
    assert response.status_code == 422
    assert response.json()["type"].endswith("/weak-password")


async def test_registration_names_each_invalid_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/register", json={"email": "nope", "password": "short"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"email", "password"}


async def test_malformed_json_is_a_problem_not_a_crash(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/register", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_login_with_a_wrong_password_or_unknown_email_is_refused(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client, "carol@example.com")
    for username, password in [
        ("carol@example.com", "wrong password"),
        ("x@example.com", PASSWORD),
    ]:
        response = await client.post(
            "/v1/auth/token", data={"username": username, "password": password}
        )
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["type"].endswith("/invalid-credentials")


async def test_the_access_token_opens_the_account(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "dan@example.com")
    me = await client.get("/v1/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["email"] == "dan@example.com"


async def test_requests_without_a_token_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM


def _claims(sub: str, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": sub,
        "iss": "pixelfleet",
        "aud": "pixelfleet-api",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return claims


async def test_forged_expired_foreign_and_unsigned_tokens_are_refused(
    client: httpx.AsyncClient,
) -> None:
    headers = await sign_up(client, "eve@example.com")
    user_id = (await client.get("/v1/me", headers=headers)).json()["id"]
    forged = [
        jwt.encode(_claims(user_id), "another key" * 4, algorithm="HS256"),
        jwt.encode(_claims(user_id, exp=int(time.time()) - 10), TEST_JWT_SECRET, algorithm="HS256"),
        jwt.encode(_claims(user_id, aud="someone-else"), TEST_JWT_SECRET, algorithm="HS256"),
        jwt.encode(_claims(user_id, iss="someone-else"), TEST_JWT_SECRET, algorithm="HS256"),
        jwt.encode(_claims(user_id), TEST_JWT_SECRET, algorithm="HS512"),
        jwt.encode(_claims(user_id), None, algorithm="none"),
        jwt.encode(_claims(str(uuid.uuid4())), TEST_JWT_SECRET, algorithm="HS256"),
        jwt.encode(_claims(user_id, epoch="0"), TEST_JWT_SECRET, algorithm="HS256"),
        jwt.encode(_claims(user_id, epoch=True), TEST_JWT_SECRET, algorithm="HS256"),
        jwt.encode(_claims(user_id, epoch=1), TEST_JWT_SECRET, algorithm="HS256"),
        "not.a.token",
    ]
    for token in forged:
        response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert response.headers["content-type"] == PROBLEM
    valid = jwt.encode(_claims(user_id), TEST_JWT_SECRET, algorithm="HS256")
    assert (
        await client.get("/v1/me", headers={"Authorization": f"Bearer {valid}"})
    ).status_code == 200


async def _login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await client.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert response.status_code == 200
    tokens: dict[str, str] = response.json()
    assert tokens["token_type"] == "bearer"
    return tokens


async def test_a_refresh_token_is_rotated_and_works_once(client: httpx.AsyncClient) -> None:
    await sign_up(client, "fay@example.com")
    first = await _login(client, "fay@example.com")
    rotated = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert me.status_code == 200


async def test_reusing_a_refresh_token_signs_out_that_whole_login(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client, "gus@example.com")
    first = await _login(client, "gus@example.com")
    rotated = (
        await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    reuse = await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert reuse.json()["type"].endswith("/refresh-token-reused")
    # The token the attacker (or the victim) got from the rotation is dead too.
    after = await client.post("/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert after.status_code == 401
    # Another login is unaffected.
    other = await _login(client, "gus@example.com")
    ok = await client.post("/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert ok.status_code == 200


async def test_an_unknown_refresh_token_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/refresh", json={"refresh_token": "made-up"})
    assert response.status_code == 401
    assert response.json()["type"].endswith("/invalid-token")


async def test_logout_revokes_the_refresh_token(client: httpx.AsyncClient) -> None:
    await sign_up(client, "hal@example.com")
    tokens = await _login(client, "hal@example.com")
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    out = await client.post(
        "/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=headers
    )
    assert out.status_code == 204
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401


async def test_logout_needs_only_the_refresh_token_and_is_repeatable(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client, "ida@example.com")
    tokens = await _login(client, "ida@example.com")
    for _ in range(2):
        out = await client.post("/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        assert out.status_code == 204
    unknown = await client.post("/v1/auth/logout", json={"refresh_token": "never issued"})
    assert unknown.status_code == 204


async def test_rotation_does_not_extend_a_login(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    await sign_up(client, "jon@example.com")
    first = await _login(client, "jon@example.com")
    second = (
        await client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    async with ctx.sessions() as session:
        rows = (await session.scalars(select(RefreshToken))).all()
    families: dict[uuid.UUID, list[RefreshToken]] = {}
    for row in rows:
        families.setdefault(row.family_id, []).append(row)
    rotated = next(tokens for tokens in families.values() if len(tokens) == 2)
    assert rotated[0].expires_at == rotated[1].expires_at
    assert second["refresh_token"]


async def test_an_expired_refresh_token_is_refused(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    await sign_up(client, "kim@example.com")
    tokens = await _login(client, "kim@example.com")
    async with ctx.sessions.begin() as session:
        await session.execute(
            update(RefreshToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401
    assert refresh.json()["type"].endswith("/invalid-token")


async def test_a_disabled_account_can_neither_log_in_nor_refresh_nor_use_its_token(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "len@example.com")
    tokens = await _login(client, "len@example.com")
    async with ctx.sessions.begin() as session:
        await session.execute(update(User).values(is_active=False))
    login = await client.post(
        "/v1/auth/token", data={"username": "len@example.com", "password": PASSWORD}
    )
    assert login.status_code == 403
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 403
    assert (await client.get("/v1/me", headers=headers)).status_code == 403


async def _end_every_login(ctx: ProcessContext, email: str) -> None:
    async with ctx.sessions.begin() as session:
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None
        await accounts.end_every_login(session, user.id, utcnow())


async def test_ending_every_login_refuses_the_tokens_issued_before_and_not_those_after(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    signed_up = await sign_up(client, "ivy@example.com")
    user_id = (await client.get("/v1/me", headers=signed_up)).json()["id"]
    tokens = await _login(client, "ivy@example.com")
    # Issued by a release from before credential epochs, as during a rolling upgrade.
    older_release = jwt.encode(_claims(user_id), TEST_JWT_SECRET, algorithm="HS256")
    await _end_every_login(ctx, "ivy@example.com")

    for token in (signed_up["Authorization"][7:], tokens["access_token"], older_release):
        refused = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401
        assert refused.json()["type"].endswith("/invalid-token")
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401
    fresh = await _login(client, "ivy@example.com")
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {fresh['access_token']}"})
    assert me.status_code == 200
    rotated = await client.post("/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert rotated.status_code == 200


async def test_ending_every_other_login_lets_the_callers_own_go_on_after_a_refresh(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    """The login that changes the credentials goes on (after a refresh); every other ends."""
    await sign_up(client, "kim@example.com")
    own = await _login(client, "kim@example.com")
    other = await _login(client, "kim@example.com")
    async with ctx.sessions.begin() as session:
        caller = await accounts.caller_for_credential(session, own["access_token"], ctx.signer)
        assert caller.login_id is not None
        await accounts.end_every_login(
            session, caller.user.id, utcnow(), except_login=caller.login_id
        )

    for tokens in (own, other):
        me = await client.get(
            "/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert me.status_code == 401
    ended = await client.post("/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert ended.status_code == 401
    goes_on = await client.post("/v1/auth/refresh", json={"refresh_token": own["refresh_token"]})
    assert goes_on.status_code == 200, goes_on.text
    renewed = {"Authorization": f"Bearer {goes_on.json()['access_token']}"}
    assert (await client.get("/v1/me", headers=renewed)).status_code == 200


async def test_a_refresh_token_from_before_every_login_ended_fails_even_if_never_revoked(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    """As a refresh racing the end of every login would leave one: written after the
    revocation swept the account's tokens, in the epoch that ended."""
    await sign_up(client, "jo@example.com")
    tokens = await _login(client, "jo@example.com")
    await _end_every_login(ctx, "jo@example.com")
    async with ctx.sessions.begin() as session:
        await session.execute(update(RefreshToken).values(revoked_at=None))
    refresh = await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401
    assert refresh.json()["type"].endswith("/invalid-token")


async def test_passwords_are_stored_as_argon2id_hashes(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    await sign_up(client, "max@example.com")
    async with ctx.sessions() as session:
        user = (await session.scalars(select(User))).one()
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


@pytest.mark.both_backends
async def test_concurrent_registrations_of_one_email_make_one_account(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    responses = await asyncio.gather(
        *(
            client.post(
                "/v1/auth/register", json={"email": "twin@example.com", "password": PASSWORD}
            )
            for _ in range(5)
        )
    )
    assert [r.status_code for r in responses] == [202] * 5
    async with ctx.sessions() as session:
        emails = (await session.scalars(select(User.email))).all()
    assert emails == ["twin@example.com"]


@pytest.mark.both_backends
async def test_a_task_is_read_only_while_the_account_honours_the_token(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    """A status read checks the account in the task's own statement (row security applies on
    PostgreSQL): a token that lost its standing is refused as on every route, for a task that
    exists as for one that does not, and never answered."""
    headers = await sign_up(client, "rue@example.com")
    task = f"/v1/tasks/{(await submit(client, headers)).json()['id']}"
    missing = f"/v1/tasks/{uuid.uuid4()}"
    assert (await client.get(task, headers=headers)).status_code == 200
    assert (await client.get(missing, headers=headers)).status_code == 404

    await _end_every_login(ctx, "rue@example.com")
    for path in (task, missing):
        refused = await client.get(path, headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["type"].endswith("/invalid-token")

    fresh = {"Authorization": f"Bearer {(await _login(client, 'rue@example.com'))['access_token']}"}
    assert (await client.get(task, headers=fresh)).status_code == 200
    async with ctx.sessions.begin() as session:
        await session.execute(update(User).values(is_active=False))
    for path in (task, missing):
        refused = await client.get(path, headers=fresh)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith("/account-disabled")


@pytest.mark.both_backends
async def test_an_administrator_reads_their_own_tasks_like_anyone(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    admin = await sign_up_admin(client, ctx)
    task = (await submit(client, admin)).json()["id"]
    assert (await client.get(f"/v1/tasks/{task}", headers=admin)).status_code == 200
    assert (await client.get(f"/v1/tasks/{uuid.uuid4()}", headers=admin)).status_code == 404
