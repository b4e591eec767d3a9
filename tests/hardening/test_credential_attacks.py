"""Forged, stolen, stale and misused credentials: every one is refused with a 401 or 403
problem, and none opens anything. Access tokens are HS256 JWTs with `exp`, `iss` and `aud`
checked and the algorithm pinned; API keys are stored hashed, scoped, revocable and expirable."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import delete, select, update

from pixelfleet.context import ProcessContext
from pixelfleet.db import utcnow
from pixelfleet.models import ApiKey, User
from tests.api_helpers import PASSWORD, PROBLEM, image_bytes, sign_up
from tests.conftest import TEST_JWT_SECRET
from tests.hardening.tally import TALLY

PIPELINE = json.dumps({"operations": [{"op": "resize", "width": 16}], "output": {"format": "png"}})


@pytest.fixture
def backend() -> str:
    """One backend is enough: these are about credentials, not the database (tests/accounts
    runs the account rules on both)."""
    return "sqlite"


def claims(sub: str, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    values: dict[str, object] = {
        "sub": sub,
        "iss": "pixelfleet",
        "aud": "pixelfleet-api",
        "iat": now,
        "exp": now + 600,
    }
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, object], payload: dict[str, object], key: bytes | None) -> str:
    """A JWT built by hand, as an attacker would: any header, any key, or no signature."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    if key is None:
        return signing_input + "."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def attempt(
    client: httpx.AsyncClient, name: str, method: str, url: str, **kwargs: object
) -> httpx.Response:
    response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
    return TALLY.attack("credentials", name, response)


async def user_id_of(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    return str((await client.get("/v1/me", headers=headers)).json()["id"])


def forged_tokens(user_id: str) -> dict[str, str]:
    attacker_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attacker_public_pem = attacker_rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    good = claims(user_id)
    return {
        "alg none": jwt.encode(good, None, algorithm="none"),
        "alg None, hand made": hand_made({"alg": "None", "typ": "JWT"}, good, None),
        "alg NONE with a signature": hand_made({"alg": "NONE"}, good, TEST_JWT_SECRET.encode()),
        "RS256 signed by the attacker's key": jwt.encode(good, attacker_rsa, algorithm="RS256"),
        "HS256 keyed with a public key (HS/RS confusion)": hand_made(
            {"alg": "HS256", "typ": "JWT"}, good, attacker_public_pem
        ),
        "HS512 with the real key": jwt.encode(good, TEST_JWT_SECRET, algorithm="HS512"),
        "HS256 with an empty key": hand_made({"alg": "HS256"}, good, b""),
        "signed by another key": jwt.encode(good, "another key " * 5, algorithm="HS256"),
        "jku pointing elsewhere": jwt.encode(
            good, "attacker" * 4, algorithm="HS256", headers={"jku": "http://evil.test/jwks"}
        ),
        "kid path traversal, keyed with /dev/null": hand_made(
            {"alg": "HS256", "kid": "../../../../dev/null"}, good, b""
        ),
        "wrong audience": jwt.encode(
            claims(user_id, aud="another-api"), TEST_JWT_SECRET, algorithm="HS256"
        ),
        "wrong issuer": jwt.encode(
            claims(user_id, iss="https://evil.test"), TEST_JWT_SECRET, algorithm="HS256"
        ),
        "no expiry": jwt.encode(claims(user_id, exp=None), TEST_JWT_SECRET, algorithm="HS256"),
        "expired": jwt.encode(claims(user_id, exp=now - 5), TEST_JWT_SECRET, algorithm="HS256"),
        "not valid yet (nbf)": jwt.encode(
            claims(user_id, nbf=now + 3600), TEST_JWT_SECRET, algorithm="HS256"
        ),
        "issued in the future (iat)": jwt.encode(
            claims(user_id, iat=now + 3600), TEST_JWT_SECRET, algorithm="HS256"
        ),
        "subject is not a uuid": jwt.encode(claims("../admin"), TEST_JWT_SECRET, algorithm="HS256"),
        "subject of nobody": jwt.encode(
            claims(str(uuid.uuid4())), TEST_JWT_SECRET, algorithm="HS256"
        ),
        "truncated": jwt.encode(good, TEST_JWT_SECRET, algorithm="HS256")[:-6],
        "garbage": "eyJ" + "A" * 300,
        "empty segments": "..",
    }


async def test_forged_and_stale_access_tokens_open_nothing(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "victim@example.com")
    user_id = await user_id_of(client, headers)
    for name, token in forged_tokens(user_id).items():
        for method, url in (("GET", "/v1/me"), ("GET", "/v1/tasks"), ("GET", "/v1/credits")):
            answer = await attempt(client, name, method, url, headers=bearer(token))
            assert answer.status_code == 401, (name, url, answer.text)
            assert answer.headers["content-type"] == PROBLEM
            assert answer.headers["WWW-Authenticate"] == "Bearer"
            assert "victim" not in answer.text


async def test_a_token_whose_claims_were_edited_is_refused(client: httpx.AsyncClient) -> None:
    mallory = await sign_up(client, "mallory@example.com")
    victim_id = await user_id_of(client, await sign_up(client, "target@example.com"))
    token = mallory["Authorization"].removeprefix("Bearer ")
    header, payload, signature = token.split(".")
    claims_of_mallory = json.loads(base64.urlsafe_b64decode(payload + "=="))
    edited = b64(json.dumps({**claims_of_mallory, "sub": victim_id}).encode())
    answer = await attempt(
        client, "edited sub", "GET", "/v1/me", headers=bearer(f"{header}.{edited}.{signature}")
    )
    assert answer.status_code == 401


async def test_a_token_claiming_the_admin_role_gets_no_admin(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "climber@example.com")
    user_id = await user_id_of(client, headers)
    # Signed with the real key (as if it leaked): the role still comes from the account.
    token = jwt.encode(claims(user_id, role="admin"), TEST_JWT_SECRET, algorithm="HS256")
    admin_paths = [
        path
        for path in (await client.get("/openapi.json")).json()["paths"]
        if path.startswith("/v1/admin") and "{" not in path
    ]
    assert "/v1/admin/users" in admin_paths
    for path in admin_paths:
        answer = await attempt(client, "role claim", "GET", path, headers=bearer(token))
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["type"].endswith("/admin-required")


async def test_tokens_of_deleted_and_deactivated_accounts_stop_working(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    gone = await sign_up(client, "gone@example.com")
    benched = await sign_up(client, "benched@example.com")
    async with ctx.sessions.begin() as session:
        await session.execute(delete(User).where(User.email == "gone@example.com"))
        await session.execute(
            update(User).where(User.email == "benched@example.com").values(is_active=False)
        )
    assert (await attempt(client, "deleted", "GET", "/v1/me", headers=gone)).status_code == 401
    answer = await attempt(client, "deactivated", "GET", "/v1/me", headers=benched)
    assert answer.status_code == 403
    assert answer.json()["type"].endswith("/account-disabled")


async def test_a_stolen_refresh_token_replayed_signs_out_the_whole_login(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client, "rota@example.com")
    form = {"username": "rota@example.com", "password": PASSWORD}
    stolen = (await client.post("/v1/auth/token", data=form)).json()["refresh_token"]
    legit = await client.post("/v1/auth/refresh", json={"refresh_token": stolen})
    assert legit.status_code == 200
    replay = await attempt(
        client, "refresh replay", "POST", "/v1/auth/refresh", json={"refresh_token": stolen}
    )
    assert replay.status_code == 401
    assert replay.json()["type"].endswith("/refresh-token-reused")
    # The owner's newer refresh token died with the family.
    newer = legit.json()["refresh_token"]
    after = await client.post("/v1/auth/refresh", json={"refresh_token": newer})
    assert after.status_code == 401
    # And a refresh token is no access token, nor the other way round.
    access = legit.json()["access_token"]
    crossed = await attempt(client, "refresh as bearer", "GET", "/v1/me", headers=bearer(newer))
    assert crossed.status_code == 401
    crossed = await attempt(
        client, "access as refresh", "POST", "/v1/auth/refresh", json={"refresh_token": access}
    )
    assert crossed.status_code == 401


async def new_key(
    client: httpx.AsyncClient, headers: dict[str, str], *scopes: str, **extra: object
) -> dict[str, object]:
    created = await client.post(
        "/v1/me/api-keys", headers=headers, json={"name": "ci", "scopes": list(scopes), **extra}
    )
    assert created.status_code == 201, created.text
    assert created.headers["Cache-Control"] == "no-store"
    body: dict[str, object] = created.json()
    return body


async def test_an_api_key_does_only_what_its_scopes_allow(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "builder@example.com")
    reader = bearer(str((await new_key(client, headers, "tasks:read"))["key"]))
    writer = bearer(str((await new_key(client, headers, "tasks:write", "tasks:read"))["key"]))
    upload = {
        "files": {"file": ("a.png", image_bytes("PNG", (32, 32)), "image/png")},
        "data": {"pipeline": PIPELINE},
    }

    refused = await attempt(
        client, "read key submits", "POST", "/v1/tasks", headers=reader, **upload
    )
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/insufficient-scope")
    assert "tasks:write" in refused.json()["detail"]
    task = await client.post("/v1/tasks", headers=writer, **upload)  # type: ignore[arg-type]
    assert task.status_code == 202, task.text
    assert (await client.get(f"/v1/tasks/{task.json()['id']}", headers=reader)).status_code == 200
    cancel = await attempt(
        client, "read key cancels", "DELETE", f"/v1/tasks/{task.json()['id']}", headers=reader
    )
    assert cancel.status_code == 403
    no_credits_scope = await attempt(
        client, "ledger without scope", "GET", "/v1/credits", headers=writer
    )
    assert no_credits_scope.status_code == 403

    # What a leaked key must never reach, whatever its scopes.
    for method, url, body in (
        ("POST", "/v1/me/api-keys", {"name": "more", "scopes": ["tasks:read"]}),
        ("GET", "/v1/me/api-keys", None),
        ("GET", "/v1/me/webhook-secret", None),
        ("POST", "/v1/me/webhook-secret/rotate", None),
        ("POST", "/v1/payments/orders", {"pack_id": "starter"}),
    ):
        answer = await attempt(client, "key overreach", method, url, headers=writer, json=body)
        assert answer.status_code == 403, (url, answer.text)
        assert "log in" in answer.json()["detail"]


async def test_api_keys_are_kept_only_as_hashes_and_shown_once(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "keeper@example.com")
    created = await new_key(client, headers, "tasks:read")
    key = str(created["key"])
    assert key.startswith("pfk_")
    assert len(key) >= 40
    assert created["prefix"] == key[:12]
    async with ctx.sessions() as session:
        stored = (await session.scalars(select(ApiKey))).one()
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in json.dumps(
        {column: str(getattr(stored, column)) for column in ApiKey.__table__.columns.keys()}  # noqa: SIM118
    )
    listing = await client.get("/v1/me/api-keys", headers=headers)
    assert key not in listing.text
    assert [item["prefix"] for item in listing.json()["items"]] == [key[:12]]
    one = await client.get(f"/v1/me/api-keys/{created['id']}", headers=headers)
    assert key not in one.text
    assert "key" not in one.json()


async def test_revoked_expired_altered_and_orphaned_keys_are_refused(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "ops@example.com")
    revoked = await new_key(client, headers, "tasks:read")
    expiring = await new_key(client, headers, "tasks:read", expires_in_days=1)
    kept = await new_key(client, headers, "tasks:read")
    assert (await client.get("/v1/tasks", headers=bearer(str(kept["key"])))).status_code == 200

    gone = await client.delete(f"/v1/me/api-keys/{revoked['id']}", headers=headers)
    assert gone.status_code == 204
    again = await client.delete(f"/v1/me/api-keys/{revoked['id']}", headers=headers)
    assert again.status_code == 204  # revoking twice changes nothing
    async with ctx.sessions.begin() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(str(expiring["id"])))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    key = str(kept["key"])
    altered = key[:-1] + ("A" if key[-1] != "A" else "B")
    for name, credential in (
        ("revoked key", str(revoked["key"])),
        ("expired key", str(expiring["key"])),
        ("altered key", altered),
        ("made-up key", "pfk_" + "x" * 43),
        ("bare prefix", "pfk_"),
    ):
        answer = await attempt(client, name, "GET", "/v1/tasks", headers=bearer(credential))
        assert answer.status_code == 401, (name, answer.text)
        assert answer.headers["content-type"] == PROBLEM

    # A key stops with its account.
    async with ctx.sessions.begin() as session:
        await session.execute(
            update(User).where(User.email == "ops@example.com").values(is_active=False)
        )
    answer = await attempt(
        client, "key of a disabled account", "GET", "/v1/tasks", headers=bearer(key)
    )
    assert answer.status_code == 403


async def test_a_key_records_when_it_was_last_used(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "audit@example.com")
    created = await new_key(client, headers, "tasks:read")
    assert created["last_used_at"] is None
    await client.get("/v1/tasks", headers=bearer(str(created["key"])))
    listed = (await client.get(f"/v1/me/api-keys/{created['id']}", headers=headers)).json()
    assert listed["last_used_at"] is not None


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["admin"]},
        {"name": "x", "scopes": ["session"]},
        {"name": "x", "scopes": ["tasks:read", "tasks:read"]},
        {"name": "", "scopes": ["tasks:read"]},
        {"name": "bad\nname", "scopes": ["tasks:read"]},
        {"name": "x", "scopes": ["tasks:read"], "expires_in_days": 0},
        {"name": "x", "scopes": ["tasks:read"], "user_id": str(uuid.uuid4())},
    ],
)
async def test_a_key_cannot_be_made_with_more_than_a_user_may_give_it(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    headers = await sign_up(client, "greedy@example.com")
    answer = await attempt(
        client, "bad key request", "POST", "/v1/me/api-keys", headers=headers, json=body
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM
