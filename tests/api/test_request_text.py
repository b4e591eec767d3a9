"""Text that a database cannot store or a driver cannot encode (a NUL character, a lone surrogate,
invalid UTF-8) and control characters never get past the API's edge: every request that carries
one, in any header, path or query parameter, form field or JSON string, is answered 422
`validation-error` naming the field, on SQLite and on PostgreSQL (which refuses NUL in text),
never 5xx. Text that is merely unusual (an emoji written as a JSON surrogate pair, a tab or a
line break in a multi-line value, accented letters in a query) is still taken."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pydantic import SecretStr

from pixelfleet.accounts import service as accounts
from pixelfleet.api.app import create_app
from pixelfleet.bootstrap import create_context
from pixelfleet.settings import Settings
from tests.api_helpers import PASSWORD, PROBLEM, image_bytes
from tests.conftest import TEST_JWT_SECRET
from tests.harness.postgres import PostgresServer

SPEC: dict[str, Any] = create_app(Settings()).openapi()
METHODS = ("get", "put", "post", "delete", "patch")
HOSTILE = {"nul": "a\x00b", "lone surrogate": "a\ud800b"}
IMAGE = image_bytes("PNG", (16, 16))
WEBHOOK_SECRET = "webhook-secret-" + "w" * 20
# The webhook's body is read raw, its signature covering the bytes: the service checks what it
# decodes (test_a_signed_webhook_body_holding_a_nul_is_refused_and_not_stored).
RAW_BODIES = {"POST /v1/payments/webhook"}


def _encoded(text: str) -> str:
    """Percent-encoded as a client would send it; a lone surrogate, which UTF-8 cannot hold,
    goes as the bytes a careless encoder writes for it (`%ED%A0%80`: invalid UTF-8)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _resolved(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema a `$ref` or an optional (`anyOf` with null) stands for."""
    while True:
        if "$ref" in schema:
            schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        elif "anyOf" in schema:
            schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
        else:
            return schema


def _takes_text(schema: dict[str, Any]) -> bool:
    return _resolved(schema).get("type") == "string"


def _is_file(schema: dict[str, Any]) -> bool:
    resolved = _resolved(schema)
    return resolved.get("format") == "binary" or "contentMediaType" in resolved


@dataclass(frozen=True)
class Probe:
    """One hostile text in one field of one operation."""

    operation: str  # `POST /v1/presets`
    where: str  # path, query, header, json, form (url-encoded), multipart, file name
    name: str  # the parameter or top-level field
    hostile: str  # a key of HOSTILE
    field: str  # what the problem must name

    def __str__(self) -> str:
        return f"{self.operation} {self.where} {self.field} {self.hostile}"


def _body_probes(operation: str, media_type: str, media: dict[str, Any]) -> Iterator[Probe]:
    schema = _resolved(media["schema"])
    example = media["example"]
    for name, prop in schema.get("properties", {}).items():
        kind = _resolved(prop)
        if media_type == "application/json":
            where = "json"
            if kind.get("type") == "string":
                inside = name
            elif kind.get("type") == "object":
                inside = f"{name}.note"
            elif kind.get("type") == "array" and _takes_text(kind.get("items", {})):
                inside = f"{name}.0"
            else:
                continue
            kinds = list(HOSTILE)
        else:
            where = "form" if media_type == "application/x-www-form-urlencoded" else "multipart"
            if _is_file(kind):
                yield Probe(operation, "file name", name, "nul", name)
                continue
            if kind.get("type") != "string":
                continue
            carries_json = isinstance(example.get(name), str) and example[name].startswith("{")
            inside = f"{name}.note" if carries_json else name
            # A multipart part is bytes: the server reads one that is not UTF-8 as Latin-1, so a
            # lone surrogate can reach a service only as a JSON escape inside a JSON field.
            kinds = list(HOSTILE) if where == "form" or carries_json else ["nul"]
        for hostile in kinds:
            yield Probe(operation, where, name, hostile, inside)


def _probes() -> Iterator[Probe]:
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            operation = f"{method.upper()} {path}"
            details = item[method]
            for parameter in details.get("parameters", []):
                if not _takes_text(parameter["schema"]):
                    continue
                where = parameter["in"]
                # Header values are bytes read as Latin-1: no surrogate can arrive in one.
                for hostile in HOSTILE if where != "header" else ["nul"]:
                    name = parameter["name"]
                    yield Probe(operation, where, name, hostile, name)
            if operation in RAW_BODIES:
                continue
            for media_type, media in details.get("requestBody", {}).get("content", {}).items():
                yield from _body_probes(operation, media_type, media)


PROBES = list(_probes())


def _multipart(parts: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    """A multipart body written by hand: an HTTP client escapes control characters in a file
    name, and an attacker's client does not."""
    boundary = uuid.uuid4().hex
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _request(probe: Probe, headers: dict[str, str]) -> dict[str, Any]:
    """A request for the probe's operation, well-formed but for the hostile text."""
    method, path = probe.operation.split(" ", 1)
    text = HOSTILE[probe.hostile]
    details = SPEC["paths"][path][method.lower()]
    headers = dict(headers)
    for parameter in details.get("parameters", []):
        if parameter["in"] == "path":
            value = _encoded(text) if parameter["name"] == probe.name else str(uuid.uuid4())
            path = path.replace("{" + parameter["name"] + "}", value)
    if probe.where == "query":
        path += f"?{probe.name}={_encoded(text)}"
    if probe.where == "header":
        headers[probe.name] = text
    request: dict[str, Any] = {"method": method, "url": path, "headers": headers}
    content = details.get("requestBody", {}).get("content", {})
    if not content:
        return request
    # The body of the probe's kind, where an operation takes several (a JSON body or an upload).
    wanted = {"json": "application/json", "form": "application/x-www-form-urlencoded"}.get(
        probe.where, "multipart/form-data"
    )
    media_type = wanted if wanted in content else next(iter(content))
    media = content[media_type]
    if media["schema"].get("format") == "binary":  # the bytes of an image, as they are
        request["content"] = IMAGE
        headers.setdefault("Content-Type", media_type)
        return request
    values = dict(media["example"])
    if probe.where in {"json", "form", "multipart"}:
        current = values.get(probe.name)
        if probe.field.endswith(".note") and isinstance(current, str):
            values[probe.name] = json.dumps({**json.loads(current), "note": text})
        elif probe.field.endswith(".note"):
            values[probe.name] = {**(current or {}), "note": text}
        elif probe.field.endswith(".0"):
            values[probe.name] = [text]
        else:
            values[probe.name] = text
    if media_type == "application/json":
        request["content"] = json.dumps(values).encode()  # escapes: `\u0000`, `\ud800`
        headers["Content-Type"] = media_type
    elif media_type == "application/x-www-form-urlencoded":
        pairs = [f"{name}={_encoded(str(value))}" for name, value in values.items()]
        request["content"] = "&".join(pairs).encode()
        headers["Content-Type"] = media_type
    else:
        schema = _resolved(media["schema"])["properties"]
        parts = []
        for name, value in values.items():
            if _is_file(schema[name]):
                filename = text if probe.where == "file name" and probe.name == name else value
                parts.append((name, str(filename), IMAGE))
            else:
                parts.append((name, None, str(value).encode("utf-8", "surrogatepass")))
        request["content"], headers["Content-Type"] = _multipart(parts)
    return request


@dataclass
class Served:
    """The API on one backend's database, with an administrator signed in (who may call every
    route, so that nothing stops a request before the text would reach the database)."""

    backend: str
    client: httpx.AsyncClient
    admin: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def served(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
    postgres_server: PostgresServer,
    postgres_template: str,
) -> AsyncIterator[Served]:
    backend = str(request.param)
    directory = tmp_path_factory.mktemp(f"text-{backend}")
    if backend == "sqlite":
        path = directory / "pixelfleet.db"
        shutil.copyfile(sqlite_template, path)
        database_url = f"sqlite+aiosqlite:///{path}"
    else:
        name = f"text_{uuid.uuid4().hex[:16]}"
        database_url = await postgres_server.create_database(name, template=postgres_template)
    settings = Settings(
        data_dir=directory / "data",
        database_url=database_url,
        jwt_secret=TEST_JWT_SECRET,
        rate_limits_enabled=False,
        razorpay_webhook_secret=SecretStr(WEBHOOK_SECRET),
    )
    ctx = create_context(settings)
    transport = httpx.ASGITransport(app=create_app(ctx=ctx))
    base_url = "http://pixelfleet.test"
    try:
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
            async with ctx.sessions.begin() as session:
                await accounts.register(
                    session, "root@example.com", PASSWORD, signup_credits=100, role="admin"
                )
            token = await http.post(
                "/v1/auth/token", data={"username": "root@example.com", "password": PASSWORD}
            )
            assert token.status_code == 200, token.text
            admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
            yield Served(backend, http, admin)
    finally:
        await ctx.close()
        if backend == "postgresql":
            await postgres_server.drop_database(name)


def _assert_refused(response: httpx.Response, field_name: str, *, header: bool = False) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"].endswith("/validation-error"), problem
    named = [error["field"] for error in problem["errors"]]
    if header:
        named, field_name = [name.lower() for name in named], field_name.lower()
    assert field_name in named, problem


def test_every_text_field_of_the_document_is_probed() -> None:
    """The probes below cover every kind of place a text can travel in, and the fields the
    attacks found first."""
    assert {probe.where for probe in PROBES} == {
        "path", "query", "header", "json", "form", "multipart", "file name"
    }  # fmt: skip
    fields = {(probe.operation, probe.field) for probe in PROBES}
    assert ("POST /v1/tasks", "pipeline.note") in fields
    assert ("GET /v1/presets", "cursor") in fields
    assert ("POST /v1/auth/token", "username") in fields
    assert len(PROBES) > 100


@pytest.mark.parametrize("probe", PROBES, ids=str)
async def test_a_hostile_text_in_any_field_is_a_422_naming_it(
    served: Served, probe: Probe
) -> None:
    response = await served.client.request(**_request(probe, served.admin))
    _assert_refused(response, probe.field, header=probe.where == "header")


OPERATIONS = [
    f"{method.upper()} {path}" for path, item in SPEC["paths"].items() for method in item
    if method in METHODS
]  # fmt: skip


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_every_route_checks_the_text_of_its_requests_before_anything_else(
    served: Served, operation: str
) -> None:
    """Every route of the document, those without a text parameter too, refuses a header it
    does not even read: the check is the application's, not each route's, so a route added
    later cannot leave it out."""
    method, path = operation.split(" ", 1)
    path = re.sub(r"{\w+}", str(uuid.uuid4()), path)
    headers = {**served.admin, "X-Note": "a\x00b"}
    response = await served.client.request(method, path, headers=headers)
    _assert_refused(response, "X-Note", header=True)


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize(
    "pipeline",
    [
        lambda name: {"preset": name},
        lambda name: {"operations": [{"op": "grayscale"}], "preset": name},
        lambda name: {"operations": [{"op": "watermark", "text": "ok", "note": name}]},
    ],
    ids=["preset alone", "preset beside operations", "deep inside an operation"],
)
async def test_a_pipeline_naming_a_preset_with_a_hostile_text_is_refused(
    served: Served, hostile: str, pipeline: Any
) -> None:
    document = pipeline(HOSTILE[hostile])
    response = await served.client.post(
        "/v1/tasks",
        headers=served.admin,
        files={"file": ("photo.png", IMAGE, "image/png")},
        data={"pipeline": json.dumps(document)},
    )
    field_name = "pipeline.preset" if "preset" in document else "pipeline.operations.0.note"
    _assert_refused(response, field_name)


def _cursor(position: Any) -> str:
    raw = json.dumps(position).encode()  # `\u0000` and `\ud800` as JSON escapes
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "%00",
        "%ED%A0%80",
        "abc%01",
        _cursor({"name": "a\x00b"}),
        _cursor({"name": "a\ud800b"}),
        base64.urlsafe_b64encode(b'{"name": "\xed\xa0\x80"}').decode(),  # a raw surrogate
        base64.urlsafe_b64encode(b'{"name": "\xff"}').decode(),  # not UTF-8
        _cursor({"name": 7}),
        _cursor(["look"]),
        _cursor({"name": {"deep": "a\x00"}}),
        "not base64 at all!",
        "%C3%A9" * 20,
    ],
)
async def test_a_malformed_presets_cursor_is_a_422_naming_the_cursor(
    served: Served, cursor: str
) -> None:
    response = await served.client.get(f"/v1/presets?cursor={cursor}", headers=served.admin)
    _assert_refused(response, "cursor")


@pytest.mark.parametrize("username", ["a%00b%40example.com", "%ED%A0%80%40example.com", "%01"])
async def test_a_login_form_username_with_a_hostile_text_is_refused(
    served: Served, username: str
) -> None:
    response = await served.client.post(
        "/v1/auth/token",
        content=f"username={username}&password=x".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    _assert_refused(response, "username")


def _signed(body: bytes) -> dict[str, str]:
    signature = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Razorpay-Signature": signature,
        "x-razorpay-event-id": f"evt_{uuid.uuid4().hex[:14]}",
        "Content-Type": "application/json",
    }


async def test_a_signed_webhook_body_holding_a_nul_is_refused_and_not_stored(
    served: Served,
) -> None:
    body = json.dumps(
        {"event": "payment.failed", "payload": {"payment": {"entity": {"id": "pay_\x00"}}}}
    ).encode()
    headers = _signed(body)
    for _ in range(2):  # refused again: the first delivery stored nothing
        response = await served.client.post("/v1/payments/webhook", content=body, headers=headers)
        assert response.status_code == 400, response.text
        problem = response.json()
        assert problem["type"].endswith("/invalid-webhook"), problem
        assert "payload.payment.entity.id" in problem["detail"], problem


async def test_unusual_but_valid_text_is_still_taken(served: Served) -> None:
    """An emoji sent as a JSON surrogate pair, a tab and a line break in a JSON value (a
    password), and a query parameter with accented letters get past the check."""
    pipeline = {"operations": [{"op": "watermark", "text": "Fleet \U0001f680"}]}
    created = await served.client.post(
        "/v1/presets",
        headers={**served.admin, "Content-Type": "application/json"},
        content=json.dumps({"name": "rocket", "pipeline": pipeline}).encode(),
    )
    assert created.status_code == 201, created.text
    assert created.json()["pipeline"]["operations"][0]["text"] == "Fleet \U0001f680"
    registered = await served.client.post(
        "/v1/auth/register",
        json={"email": "tab@example.com", "password": "correct\thorse\nbattery staple"},
    )
    assert registered.status_code == 202, registered.text
    found = await served.client.get("/v1/admin/users?email=%C3%A9", headers=served.admin)
    assert found.status_code == 200, found.text


@pytest.mark.parametrize("header", ["Authorization", "User-Agent"])
async def test_a_header_with_a_control_character_is_refused(served: Served, header: str) -> None:
    """Header values are checked too, whether a route declares them or not: a credential is
    looked up in the database, and access logs may carry any header. (An `X-Request-ID` the API
    cannot use is replaced by one of its own, as tests/observability/test_request_id.py shows.)"""
    value = "Bearer pfk_a\x00b" if header == "Authorization" else "a\x00b"
    headers = {**served.admin, header: value}
    response = await served.client.get("/v1/me", headers=headers)
    _assert_refused(response, header, header=True)
