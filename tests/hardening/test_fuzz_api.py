"""Schemathesis against the OpenAPI document a real `pixelfleet up` serves: every operation, as
a stranger, as a signed-in user and (for the administration) as an administrator, with data that
fits the document, data that does not, and well-formed data that reaches past the first refusal
(the user's real ids, real images, real pipelines). No answer is a 5xx; every answer has a status,
a content type and a body that the document lists for that operation; every error is a complete
RFC 9457 problem. The last test prints the tally. It all runs twice: on SQLite and on
PostgreSQL (which refuses a NUL character in text, where SQLite stores it), each with fewer
generated examples than one backend alone would get.

Besides what Schemathesis generates, every operation is sent, as explicit examples, a NUL in
each of its text parameters and fields and a lone surrogate in each JSON string (Schemathesis
draws strings from valid UTF-8, so it makes no lone surrogate, and a NUL only by chance), and
each of the caller's well-formed requests (which generation would draw only by chance).

Schemathesis' stateful state machine is not used: which of its rules it may draw depends on the
live server's earlier answers, which Hypothesis reports as flaky data generation. The user's
real ids, made before the fuzz, stand in for the links it would follow."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext, CheckFunction, not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api_helpers import PASSWORD, image_bytes
from tests.hardening.tally import TALLY as HARDENING
from tests.harness.embedded import RunningPlatform, pixelfleet_up
from tests.harness.postgres import PostgresServer
from tests.harness.razorpay import FakeRazorpay
from tests.live_api import sign_in, submit, wait_final
from tests.mail.letters import token_in, wait_for_mail

pytestmark = pytest.mark.heavy

PROBLEM = "application/problem+json"
JWT_SECRET = "fuzz-" + "f" * 59
EXAMPLES_PER_OPERATION = 12  # on each backend
# Text no database can store (PostgreSQL refuses NUL) or no driver can encode (a lone surrogate).
NUL = "a\x00b"
LONE_SURROGATE = "a\ud800b"

# Random bytes are never an image and random text never a pipeline: these get past the 415/422.
IMAGE = image_bytes("PNG", (48, 32))
PIPELINES: list[dict[str, Any]] = [
    {"operations": [{"op": "resize", "width": 16}], "output": {"format": "webp"}},
    {
        "operations": [{"op": "grayscale"}],
        "variants": [
            {"name": "small", "operations": [{"op": "thumbnail", "width": 8, "height": 8}]},
            {"name": "flipped", "operations": [{"op": "flip"}], "output": {"format": "jpeg"}},
        ],
    },
]


@dataclass
class Tally:
    requests: int = 0  # every request sent, the checks' own probes included
    operations: set[str] = field(default_factory=set)
    server_errors: list[str] = field(default_factory=list)
    answered: dict[str, set[int]] = field(default_factory=dict)  # statuses, by operation
    hostile_made: int = 0  # explicit cases with a NUL or a lone surrogate
    hostile_answered: dict[int, int] = field(default_factory=dict)  # requests holding one

    def start_over(self) -> None:
        """Before the fuzz of the next backend."""
        self.requests = 0
        self.operations.clear()
        self.server_errors.clear()
        self.answered.clear()
        self.hostile_made = 0
        self.hostile_answered.clear()


TALLY = Tally()


@dataclass
class Caller:
    """Who fuzzes, with what credential, and the well-formed values to mix into the fuzz."""

    headers: dict[str, str]
    path_parameters: dict[str, str] = field(default_factory=dict)
    # By operation label: the parts of well-formed requests (`body`, `headers`).
    requests: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    paths: str = "/"  # the prefix of the paths it fuzzes


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def backend_env(
    request: pytest.FixtureRequest,
    postgres_server: PostgresServer,
    postgres_template: str,
) -> AsyncIterator[dict[str, str]]:
    """The environment that points `pixelfleet` (the server and the commands) at the backend:
    nothing for SQLite (its file in the data directory), a fresh migrated database for
    PostgreSQL."""
    TALLY.start_over()
    if request.param == "sqlite":
        yield {}
        return
    name = f"fuzz_{uuid.uuid4().hex[:12]}"
    url = await postgres_server.create_database(name, template=postgres_template)
    yield {"PIXELFLEET_DATABASE_URL": url}
    await postgres_server.drop_database(name)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, backend_env: dict[str, str]) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "data"


def pixelfleet_command(
    *arguments: str, data_dir: Path, backend_env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """A `pixelfleet` command on the fuzzed server's data and database."""
    return subprocess.run(
        [sys.executable, "-m", "pixelfleet", *arguments],
        input=stdin,
        env={
            **{name: value for name, value in os.environ.items() if "PIXELFLEET_" not in name},
            "PIXELFLEET_DATA_DIR": str(data_dir),
            "PIXELFLEET_JWT_SECRET": JWT_SECRET,
            **backend_env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def razorpay() -> Iterator[FakeRazorpay]:
    with FakeRazorpay() as fake:
        yield fake


@pytest.fixture(scope="module")
def platform(
    data_dir: Path, razorpay: FakeRazorpay, backend_env: dict[str, str]
) -> Iterator[RunningPlatform]:
    """With payments at the fake Razorpay, so that the payment routes run rather than answer
    503 `payments-not-configured`."""
    env = {
        **backend_env,
        "PIXELFLEET_JWT_SECRET": JWT_SECRET,
        # Rate limits would answer 429 to most of a fuzzer's requests and hide the code behind.
        "PIXELFLEET_RATE_LIMITS_ENABLED": "false",
        "PIXELFLEET_SIGNUP_CREDITS": "1000000",
        "PIXELFLEET_RAZORPAY_KEY_ID": razorpay.key_id,
        "PIXELFLEET_RAZORPAY_KEY_SECRET": razorpay.key_secret,
        "PIXELFLEET_RAZORPAY_WEBHOOK_SECRET": razorpay.webhook_secret,
        "PIXELFLEET_RAZORPAY_BASE_URL": razorpay.base_url,
        # A generated source URL names a made-up public host: never waited on for long.
        "PIXELFLEET_SOURCE_FETCH_TIMEOUT_SECONDS": "2",
    }
    with pixelfleet_up(data_dir, env=env, workers=1) as running:
        yield running


EVENT_STREAM = "text/event-stream"


def as_schemathesis_reads_it(document: dict[str, Any]) -> dict[str, Any]:
    """The served document, but for its event streams' `schema`. In OpenAPI 3.1 that is the
    schema of the whole body, a string (which generated clients read as text); Schemathesis,
    before 3.2's `itemSchema`, takes it for the schema of each event, and would hold every
    event to be a string. Without it, a stream is still held to its status and media type;
    the events are checked in tests/jobs and tests/api/test_generated_client.py."""
    for item in document["paths"].values():
        for operation in item.values():
            for response in operation.get("responses", {}).values():
                stream = response.get("content", {}).get(EVENT_STREAM)
                if stream is not None:
                    assert stream.pop("schema") == {"type": "string"}
    return document


@pytest.fixture(scope="module")
def api_schema(platform: RunningPlatform) -> schemathesis.BaseSchema:
    url = f"{platform.base_url}/openapi.json"
    loaded = schemathesis.openapi.from_dict(as_schemathesis_reads_it(httpx.get(url).json()))
    loaded.location = url  # where the operations are sent, as `from_url` has it
    return loaded


def holds_hostile_text(request: requests.PreparedRequest) -> bool:
    """A NUL or a lone surrogate, as a URL, a form or a JSON body carries one."""
    body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
    markers = (b"%00", b"\\u0000", b"\\ud800", NUL.encode())
    return "%00" in str(request.url) or any(marker in body for marker in markers)


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    """Every request of the fuzzer goes through here, and is counted."""
    with requests.Session() as http:

        def count(response: requests.Response, *args: object, **kwargs: object) -> None:
            TALLY.requests += 1
            HARDENING.answered(
                "fuzz", f"{response.request.method} {response.url}", response.status_code
            )
            if response.status_code >= 500:
                TALLY.server_errors.append(f"{response.request.method} {response.url}")
            if holds_hostile_text(response.request):
                status = response.status_code
                TALLY.hostile_answered[status] = TALLY.hostile_answered.get(status, 0) + 1

        http.hooks["response"].append(count)
        yield http


def paid_order(http: httpx.Client, headers: dict[str, str], razorpay: FakeRazorpay) -> Any:
    """An order of the caller, paid at Razorpay: what Checkout then hands the browser."""
    opened = http.post("/v1/payments/orders", headers=headers, json={"pack_id": "starter"})
    assert opened.status_code == 201, opened.text
    return razorpay.pay(opened.json()["order_id"])


def signed_webhook(razorpay: FakeRazorpay, payment: Any) -> dict[str, Any]:
    """Razorpay's `payment.captured` for the payment, signed over the bytes the fuzzer will
    send: the document as `json.dumps` writes it (what `requests` sends for a JSON body)."""
    body, headers = razorpay.webhook("payment.captured", payment=payment)
    document = json.loads(body)
    signature = razorpay.sign_webhook(json.dumps(document).encode())
    return {
        "body": document,
        "headers": {**headers, "X-Razorpay-Signature": signature},
    }


def image_url_of_another_account(http: httpx.Client) -> str:
    """The token of a derivative URL of an account of its own (made on its first read)."""
    headers = sign_in(http, f"viewer-{uuid.uuid4().hex[:8]}@example.com")
    asset = http.post("/v1/assets", headers=headers, files={"file": ("mark.png", IMAGE)})
    preset = http.post(
        "/v1/presets", headers=headers, json={"name": "shown", "pipeline": PIPELINES[0]}
    )
    for made in (asset, preset):
        assert made.status_code == 201, made.text
    body = {"source": {"asset": asset.json()["id"]}, "preset": "shown"}
    signed = http.post("/v1/image-urls", headers=headers, json=body)
    assert signed.status_code == 201, signed.text
    url: str = signed.json()["url"]
    return url.rsplit("/", 1)[1]


def mailed_tokens(http: httpx.Client, headers: dict[str, str], data_dir: Path) -> dict[str, str]:
    """The tokens of a verification link mailed to the user, and of a reset link mailed to
    another account (a reset ends every login of its account: the fuzzer's must go on)."""
    resettee = f"resettee-{uuid.uuid4().hex[:8]}@example.com"
    sign_in(http, resettee)
    asked = http.post("/v1/auth/password-reset", json={"email": resettee})
    assert asked.status_code == 202, asked.text
    me = http.get("/v1/me", headers=headers).json()
    resent = http.post("/v1/me/email-verification", headers=headers)
    assert resent.status_code == 202, resent.text
    return {
        "reset": token_in(wait_for_mail(data_dir, resettee, "Reset your")),
        "verification": token_in(wait_for_mail(data_dir, me["email"], "Confirm your email")),
    }


@pytest.fixture(scope="module")
def user(platform: RunningPlatform, razorpay: FakeRazorpay, data_dir: Path) -> Caller:
    """A signed-in user who owns a finished task, an asset, a preset, an API key, and two
    orders paid at Razorpay (one to verify, one for its webhook)."""
    email = f"fuzzer-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=platform.base_url, timeout=30) as http:
        headers = sign_in(http, email)
        logins = [
            http.post("/v1/auth/token", data={"username": email, "password": PASSWORD}).json()
            for _ in range(2)
        ]
        task = wait_final(http, headers, submit(http, headers, PIPELINES[1], IMAGE)["id"])
        asset = http.post("/v1/assets", headers=headers, files={"file": ("mark.png", IMAGE)})
        preset = http.post(
            "/v1/presets", headers=headers, json={"name": "look", "pipeline": PIPELINES[0]}
        )
        key = http.post(
            "/v1/me/api-keys", headers=headers, json={"name": "ci", "scopes": ["tasks:read"]}
        )
        declared = {"content_type": "image/png", "bytes": len(IMAGE)}
        waiting, received = (http.post("/v1/uploads", headers=headers, json=declared) for _ in "ab")
        sent = http.put(received.json()["url"], headers=received.json()["headers"], content=IMAGE)
        assert sent.status_code == 204, sent.text
        packs = http.get("/v1/payments/packs").json()["items"]
        verified, hooked = (paid_order(http, headers, razorpay) for _ in range(2))
        shown = image_url_of_another_account(http)
        mailed = mailed_tokens(http, headers, data_dir)
    for made in (asset, preset, key):
        assert made.status_code == 201, made.text
    pipelines = [
        *PIPELINES,
        {"preset": "look"},
        {"operations": [{"op": "watermark", "asset": asset.json()["id"]}]},
    ]
    bodies: dict[str, list[Any]] = {
        "POST /v1/tasks": [{"file": IMAGE}]
        + [{"file": IMAGE, "pipeline": json.dumps(pipeline)} for pipeline in pipelines],
        "POST /v1/assets": [{"file": IMAGE}],
        "POST /v1/presets": [{"name": "other", "pipeline": PIPELINES[1]}],
        "PUT /v1/presets/{name}": [{"pipeline": pipeline} for pipeline in PIPELINES],
        "POST /v1/payments/orders": [{"pack_id": pack["id"]} for pack in packs],
        "POST /v1/payments/verify": [
            {
                "razorpay_order_id": verified["order_id"],
                "razorpay_payment_id": verified["id"],
                "razorpay_signature": razorpay.checkout_signature(
                    verified["order_id"], verified["id"]
                ),
            }
        ],
        "POST /v1/auth/token": [{"username": email, "password": PASSWORD}],
        "POST /v1/auth/refresh": [{"refresh_token": logins[0]["refresh_token"]}],
        "POST /v1/auth/logout": [{"refresh_token": logins[1]["refresh_token"]}],
        "POST /v1/me/api-keys": [{"name": "bot", "scopes": ["tasks:read", "tasks:write"]}],
        "POST /v1/uploads": [declared],
        "POST /v1/auth/password-reset/confirm": [
            {"token": mailed["reset"], "new_password": "amber lantern orchard 17"}
        ],
        "POST /v1/auth/verify-email": [{"token": mailed["verification"]}],
        "POST /v1/image-urls": [
            {"source": {"asset": asset.json()["id"]}, "preset": "look"},
            {"source": {"task": task["id"]}, "preset": "look"},
        ],
    }
    well_formed = {label: [{"body": body} for body in each] for label, each in bodies.items()}
    # A task's image is uploaded, or named in a JSON body (a stored one: nothing is fetched).
    well_formed["POST /v1/tasks"] = [
        {"body": body, "media_type": "multipart/form-data"} for body in bodies["POST /v1/tasks"]
    ] + [
        {"body": {"source": source, "pipeline": PIPELINES[0]}, "media_type": "application/json"}
        for source in (
            {"task": task["id"]},
            {"asset": asset.json()["id"]},
            {"upload": received.json()["id"]},
        )
    ]
    # An upload takes its bytes once: the first of these PUTs is answered 204, later ones 409.
    well_formed["PUT /v1/uploads/{upload_id}/content"] = [
        {
            "body": IMAGE,
            "media_type": "image/png",
            "query": {"token": parse_qs(urlsplit(waiting.json()["url"]).query)["token"][0]},
        }
    ]
    well_formed["POST /v1/quotes"] = well_formed["POST /v1/tasks"]  # any body a task takes
    # Another account's URL: the fuzzed user's own would end when the fuzz rotates its key.
    well_formed["GET /v1/images/{token}"] = [{"path_parameters": {"token": shown}}]
    well_formed["POST /v1/payments/webhook"] = [signed_webhook(razorpay, hooked)]
    return Caller(
        headers,
        path_parameters={
            "task_id": task["id"],
            "asset_id": asset.json()["id"],
            "name": "look",
            "key_id": key.json()["id"],
            "upload_id": waiting.json()["id"],
            "token": task["result"]["url"].rsplit("/", 1)[1],
        },
        requests=well_formed,
    )


@pytest.fixture(scope="module")
def administrator(
    platform: RunningPlatform, data_dir: Path, backend_env: dict[str, str]
) -> Caller:
    """An administrator (made as an operator makes one, with the command line), whose
    administration acts on an account of its own."""
    email = f"root-{uuid.uuid4().hex[:8]}@example.com"
    created = pixelfleet_command(
        "admin",
        "create-user",
        email,
        "--admin",
        "--password-stdin",
        data_dir=data_dir,
        backend_env=backend_env,
        stdin=PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stdout + created.stderr
    with httpx.Client(base_url=platform.base_url, timeout=30) as http:
        token = http.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        subject = sign_in(http, f"subject-{uuid.uuid4().hex[:8]}@example.com")
        subject_id = http.get("/v1/me", headers=subject).json()["id"]
    grant = {"body": {"amount": 5, "reason": "fuzz grant"}}
    return Caller(
        headers,
        path_parameters={"user_id": subject_id},
        requests={"POST /v1/admin/users/{user_id}/credits": [grant]},
        paths="/v1/admin/",
    )


@schemathesis.check
def tallied(
    ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    TALLY.answered.setdefault(case.operation.label, set()).add(response.status_code)
    return None


@schemathesis.check
def problem_details(
    ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """Every 4xx and 5xx answer is an RFC 9457 problem document with its four members."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    assert content_type == PROBLEM, f"error answered as {content_type!r}, not {PROBLEM}"
    body = response.json()
    assert isinstance(body, dict), body
    missing = {"type", "title", "status", "detail"} - body.keys()
    assert not missing, f"problem document without {sorted(missing)}: {body}"
    assert body["status"] == response.status_code, body
    return None


CHECKS: list[CheckFunction] = [
    tallied,
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    problem_details,
]

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,  # the same requests on every run, in CI too
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
    suppress_health_check=list(HealthCheck),
)


def _with_known(parts: dict[str, Any], known: dict[str, str]) -> dict[str, Any]:
    """A well-formed request's parts, its path parameters over the caller's known ones."""
    parameters = {**known, **parts.get("path_parameters", {})}
    return {**parts, "path_parameters": parameters or None}


def cases_for(
    operation: schemathesis.APIOperation, caller: Caller
) -> st.SearchStrategy[schemathesis.Case]:
    """Cases that fit the document, cases that do not, and the caller's well-formed ones."""
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    known = {
        name: value
        for name, value in caller.path_parameters.items()
        if name in re.findall(r"{(\w+)}", operation.path)
    }
    if known:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known))
    well_formed = caller.requests.get(operation.label, [])
    if well_formed:
        strategies.append(
            st.sampled_from(well_formed).flatmap(
                lambda parts: operation.as_strategy(
                    GenerationMode.POSITIVE, **_with_known(parts, known)
                )
            )
        )
    return st.one_of(strategies)


# Its body is read raw, its signature covering the bytes: tests/api/test_request_text.py sends
# it a signed body holding a NUL.
RAW_BODIES = {"POST /v1/payments/webhook"}


def _resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The schema a `$ref` or an optional (`anyOf` with null) stands for."""
    while True:
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        elif "anyOf" in schema:
            schema = next(each for each in schema["anyOf"] if each.get("type") != "null")
        else:
            return schema


def _with_text(value: Any, kind: dict[str, Any], text: str) -> Any:
    """The field's value with the text put in: as the value, in a list, or as a member of an
    object (a JSON object sent as a form field's text included)."""
    if kind.get("type") == "object":
        return {**(value if isinstance(value, dict) else {}), "note": text}
    if kind.get("type") == "array":
        return [text]
    if isinstance(value, str) and value.startswith("{"):
        return json.dumps({**json.loads(value), "note": text})
    return text


def hostile_cases(
    operation: schemathesis.APIOperation, caller: Caller, document: dict[str, Any]
) -> list[schemathesis.Case]:
    """A NUL in each text path and query parameter; a NUL in each text field of a well-formed
    body, and a lone surrogate too where the field is JSON (a lone surrogate cannot be encoded
    in a query string or a form, only escaped in JSON). Header values are left alone here: the
    HTTP server refuses a control character in one before the API is asked
    (tests/api/test_request_text.py sends those to the application itself)."""
    details = operation.definition.raw
    known = {
        name: caller.path_parameters.get(name, str(uuid.UUID(int=1)))
        for name in re.findall(r"{(\w+)}", operation.path)
    }
    cases = []
    for parameter in details.get("parameters", []):
        if _resolved(document, parameter["schema"]).get("type") != "string":
            continue
        if parameter["in"] == "path":
            cases.append(operation.Case(path_parameters={**known, parameter["name"]: NUL}))
        elif parameter["in"] == "query":
            cases.append(operation.Case(path_parameters=known, query={parameter["name"]: NUL}))
    content = details.get("requestBody", {}).get("content", {})
    if not content or operation.label in RAW_BODIES:
        return cases
    media_type, media = next(iter(content.items()))
    well_formed = [
        parts["body"]
        for parts in caller.requests.get(operation.label, [])
        if parts.get("media_type", media_type) == media_type
    ]
    base = (well_formed or [media.get("example")])[0]
    if not isinstance(base, dict):
        return cases
    for name, field_schema in _resolved(document, media["schema"]).get("properties", {}).items():
        kind = _resolved(document, field_schema)
        if "contentMediaType" in kind or kind.get("format") == "binary":
            continue  # a file: bytes, not text
        is_json = media_type == "application/json" or str(base.get(name, "")).startswith("{")
        for text in (NUL, LONE_SURROGATE) if is_json else (NUL,):
            body = {**base, name: _with_text(base.get(name), kind, text)}
            cases.append(
                operation.Case(path_parameters=known, body=body, media_type=media_type)
            )
    return cases


def well_formed_cases(
    operation: schemathesis.APIOperation, caller: Caller
) -> list[schemathesis.Case]:
    """The caller's well-formed requests of the operation, each sent once for certain (the
    generated cases may draw them too, by chance)."""
    known = {
        name: value
        for name, value in caller.path_parameters.items()
        if name in re.findall(r"{(\w+)}", operation.path)
    }
    content = operation.definition.raw.get("requestBody", {}).get("content", {})
    media_type = next(iter(content), "application/json")
    return [
        operation.Case(**{"media_type": media_type, **_with_known(parts, known)})
        for parts in caller.requests.get(operation.label, [])
    ]


def fuzz(
    api_schema: schemathesis.BaseSchema,
    session: requests.Session,
    caller: Caller,
    checks: list[CheckFunction],
) -> list[str]:
    """Fuzzes every operation under the caller's paths; returns what failed, by operation."""
    failures: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith(caller.paths):
            continue
        TALLY.operations.add(operation.label)

        def one_operation(case: schemathesis.Case) -> None:
            case.call_and_validate(
                session=session, headers=caller.headers, checks=checks, timeout=30
            )

        for hostile in hostile_cases(operation, caller, api_schema.raw_schema):
            one_operation = example(case=hostile)(one_operation)
            TALLY.hostile_made += 1
        for well_formed in well_formed_cases(operation, caller):
            one_operation = example(case=well_formed)(one_operation)
        fuzzed = FUZZ_SETTINGS(given(case=cases_for(operation, caller))(one_operation))
        try:
            fuzzed()
        except (FailureGroup, Exception) as failure:  # a FailureGroup is a BaseExceptionGroup
            failures.append(f"{operation.label}: {failure}")
    return failures


def test_a_stranger_gets_documented_answers(
    api_schema: schemathesis.BaseSchema, session: requests.Session
) -> None:
    failures = fuzz(api_schema, session, Caller(headers={}), [*CHECKS, ignored_auth])
    assert not failures, "\n\n".join(failures)


def test_a_signed_in_user_gets_documented_answers(
    api_schema: schemathesis.BaseSchema, session: requests.Session, user: Caller
) -> None:
    failures = fuzz(api_schema, session, user, CHECKS)
    assert not failures, "\n\n".join(failures)


def test_an_administrator_gets_documented_answers(
    api_schema: schemathesis.BaseSchema, session: requests.Session, administrator: Caller
) -> None:
    failures = fuzz(api_schema, session, administrator, CHECKS)
    assert not failures, "\n\n".join(failures)


# Cancelling answers 409 `task-already-finished` for every task the fuzzer can name: the worker
# finishes each within a second of its submission. tests/jobs cancels queued and running tasks.
# A password change is refused (403 `wrong-password`): one that went through would end the
# fuzzer's own login; tests/accounts/test_password_change.py changes passwords.
# So is an erasure (403 `wrong-password`): one that went through would erase the fuzzer's own
# account; tests/accounts/test_erasure.py erases accounts.
ONLY_REFUSED = {"DELETE /v1/tasks/{task_id}", "POST /v1/me/password", "DELETE /v1/me"}


def test_the_tally(
    platform: RunningPlatform, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = request.node.callspec.params["backend_env"]
    with capsys.disabled():
        print(
            f"\nfuzz on {backend}: {TALLY.requests} requests over {len(TALLY.operations)} "
            f"operations, {len(TALLY.server_errors)} server errors; "
            f"{sum(TALLY.hostile_answered.values())} held a NUL or a lone surrogate "
            f"({TALLY.hostile_made} explicit), answered {sorted(TALLY.hostile_answered)}"
        )
    assert TALLY.server_errors == []
    # The hostile text was sent (the explicit cases at least), and refused as invalid input.
    assert sum(TALLY.hostile_answered.values()) >= TALLY.hostile_made > 100
    assert 422 in TALLY.hostile_answered, TALLY.hostile_answered
    # Every operation also answered a well-formed request: the fuzz reached past the refusals.
    refused_only = {
        label
        for label, statuses in TALLY.answered.items()
        if not any(200 <= status < 300 for status in statuses)
    }
    assert refused_only == ONLY_REFUSED, "give the caller a well-formed request for these: " + (
        str({label: sorted(set(TALLY.answered[label])) for label in refused_only - ONLY_REFUSED})
    )


def test_after_the_fuzz_every_balance_still_equals_its_ledger(
    platform: RunningPlatform, data_dir: Path, backend_env: dict[str, str]
) -> None:
    """What the fuzz did to money (orders, verifications, webhooks, submissions, cancels) left
    the books balanced: `pixelfleet admin audit` on the fuzzed server's database."""
    audited = pixelfleet_command("admin", "audit", data_dir=data_dir, backend_env=backend_env)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert "every balance equals the sum of its ledger" in audited.stdout
