"""No secret leaves in a log line: bearer tokens, JWTs, the passwords in connection URLs and
fields named like secrets come out masked, wherever in the line they are. And no framework's
internals: an operator's line names its resource, not Kopf's settings."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import kopf
import pytest
from pydantic import SecretStr

from pixelfleet.api.app import create_app
from pixelfleet.context import ProcessContext
from pixelfleet.observability.logging import REDACTED
from pixelfleet.settings import Settings
from tests.api_helpers import PASSWORD
from tests.conftest import TEST_JWT_SECRET
from tests.observability.test_request_id import JsonLines, json_lines_logged, served

log = logging.getLogger("tests.observability.redaction")

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwicm9sZSI6InVzZXIifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
DATABASE_URL = "postgresql+asyncpg://pixelfleet:db-pa55word@db.internal:5432/pixelfleet"
REDIS_URL = "redis://:redis-pa55word@redis.internal:6379/0"


@pytest.fixture
def json_log() -> Iterator[JsonLines]:
    with json_lines_logged() as lines:
        yield lines


def test_a_bearer_token_in_a_message_is_masked(json_log: JsonLines) -> None:
    log.warning("refused header Authorization: Bearer opaque-token_123")

    [line] = json_log.lines
    assert "opaque-token_123" not in line
    assert f"Bearer {REDACTED}" in line


def test_a_jwt_is_masked_in_the_message_the_fields_and_the_exception(json_log: JsonLines) -> None:
    try:
        raise ValueError(f"could not read {JWT}")
    except ValueError:
        log.exception("token %s refused", JWT, extra={"sent": {"header": JWT}})

    [line] = json_log.lines
    assert JWT.split(".")[2] not in line
    assert JWT.split(".")[1] not in line
    record = json_log.records[0]
    assert record["event"] == f"token {REDACTED} refused"
    assert record["sent"] == {"header": REDACTED}
    assert f"could not read {REDACTED}" in record["exception"]


def test_fields_named_like_secrets_are_masked_whole(json_log: JsonLines) -> None:
    log.info(
        "login attempt",
        extra={
            "password": "hunter2-hunter2",
            "refresh_token": "r3fr3sh-t0k3n",
            "client_secret": 12345678,
            "headers": {"Authorization": "Basic dXNlcjpodW50ZXIy", "Accept": "*/*"},
            "email": "someone@example.com",
        },
    )

    [record] = json_log.records
    assert record["password"] == REDACTED
    assert record["refresh_token"] == REDACTED
    assert record["client_secret"] == REDACTED
    assert record["headers"] == {"Authorization": REDACTED, "Accept": "*/*"}
    assert record["email"] == "someone@example.com"
    for secret in ("hunter2-hunter2", "r3fr3sh-t0k3n", "12345678", "dXNlcjpodW50ZXIy"):
        assert secret not in json_log.lines[0]


def test_secret_pairs_in_query_strings_and_reprs_are_masked(json_log: JsonLines) -> None:
    log.info('"GET /v1/tasks/1/events?access_token=abc.def&limit=5 HTTP/1.1" 200')
    log.info("retrying with password='hunter2-hunter2', user='me'")
    log.info('body {"api_key": "k-123456", "name": "ok"}')

    events = [record["event"] for record in json_log.records]
    assert events == [
        f'"GET /v1/tasks/1/events?access_token={REDACTED}&limit=5 HTTP/1.1" 200',
        f"retrying with password='{REDACTED}', user='me'",
        f'body {{"api_key": "{REDACTED}", "name": "ok"}}',
    ]


def test_the_passwords_in_database_and_redis_urls_are_masked(json_log: JsonLines) -> None:
    settings = Settings(
        database_url=DATABASE_URL,
        redis_url=REDIS_URL,
        launcher="celery",
        jwt_secret=TEST_JWT_SECRET,
    )
    try:
        raise ConnectionError(f"cannot reach {settings.resolved_database_url}")
    except ConnectionError:
        log.exception("connecting to %s and %s", DATABASE_URL, REDIS_URL)
    log.info("settings", extra={"settings": settings, "urls": [DATABASE_URL, REDIS_URL]})

    output = "\n".join(json_log.lines)
    assert "db-pa55word" not in output
    assert "redis-pa55word" not in output
    first, second = json_log.records
    assert first["event"] == (
        f"connecting to postgresql+asyncpg://pixelfleet:{REDACTED}@db.internal:5432/pixelfleet"
        f" and redis://:{REDACTED}@redis.internal:6379/0"
    )
    assert "@db.internal:5432/pixelfleet" in first["exception"]
    assert second["urls"][1] == f"redis://:{REDACTED}@redis.internal:6379/0"


def test_a_password_kept_apart_from_its_url_is_masked_once_put_in(json_log: JsonLines) -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://pixelfleet@db.internal/pixelfleet",
        database_password=SecretStr("p@ss:w/rd?#"),
        jwt_secret=TEST_JWT_SECRET,
    )

    log.info("engine on %s", settings.resolved_database_url)

    [record] = json_log.records
    assert "p%40ss" not in record["event"]
    assert "w%2Frd" not in record["event"]
    assert record["event"].endswith(f":{REDACTED}@db.internal/pixelfleet")


def test_lines_without_secrets_are_left_alone(json_log: JsonLines) -> None:
    message = (
        "task 1b4e28ba finished as succeeded; 3 tokens of work, see http://example.com:8080/help"
    )
    log.info(message, extra={"attempts": 2, "token_count": None})

    [record] = json_log.records
    assert record["event"] == message
    assert record["attempts"] == 2


async def test_a_real_login_and_token_use_leave_no_token_or_password_in_the_logs(
    ctx: ProcessContext, json_log: JsonLines
) -> None:
    async with served(create_app(ctx=ctx)) as url, httpx.AsyncClient(base_url=url) as http:
        email = "careful@example.com"
        registered = await http.post(
            "/v1/auth/register", json={"email": email, "password": PASSWORD}
        )
        assert registered.status_code == 202, registered.text
        refused = await http.post(
            "/v1/auth/token", data={"username": email, "password": "wrong horse battery"}
        )
        assert refused.status_code == 401
        login = await http.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        tokens = login.json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await http.get("/v1/me", headers=bearer)).status_code == 200
        # Some clients (EventSource cannot set headers) put the token in the query string,
        # which uvicorn's access line writes as it came.
        await http.get("/v1/me", params={"access_token": tokens["access_token"]})
        await http.get("/v1/me", headers={"Authorization": "Bearer forged.token.value"})
        refreshed = await http.post(
            "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text

    output = "\n".join(json_log.lines)
    assert any(record["logger"] == "uvicorn.access" for record in json_log.records)
    assert f"/v1/me?access_token={REDACTED}" in output
    for secret in (
        PASSWORD,
        "wrong horse battery",
        tokens["access_token"],
        tokens["access_token"].split(".")[2],
        tokens["refresh_token"],
        refreshed.json()["access_token"],
        refreshed.json()["refresh_token"],
    ):
        assert secret not in output


def test_an_operator_line_names_its_resource_without_kopf_s_settings(json_log: JsonLines) -> None:
    body = {
        "apiVersion": "pixelfleet.dev/v1",
        "kind": "ImageJob",
        "metadata": {"name": "task-1", "namespace": "images", "uid": "u-1"},
    }
    kopf.ObjectLogger(body=kopf.Body(body), settings=kopf.OperatorSettings()).info("queued")
    (line,) = json_log.about("queued")
    assert "settings" not in line
    assert "k8s_skip" not in line
    assert line["object"] == {
        "apiVersion": "pixelfleet.dev/v1",
        "kind": "ImageJob",
        "name": "task-1",
        "uid": "u-1",
        "namespace": "images",
    }
    assert len(json.dumps(line)) < 600  # was over 3 KB: the settings in every line
