"""Every text of a request is held to the rule of `pixelfleet.client_text` once, here, before
any route, dependency or service sees it: header values, path parameters, query parameters,
form fields and every string (and key) of a JSON body. A text that breaks the rule is a 422
`validation-error` naming its field, never a 500 from the database or its driver. (The one
header left out is `X-Request-ID`: one the API cannot use is replaced by a new id, never used.)

It runs as a dependency of the whole application, first of every route's dependencies, so a
new route cannot leave it out (tests/api/test_request_text.py checks every route). The body
is not read twice: FastAPI has parsed it before any dependency runs and Starlette keeps what
it parsed, so this reads the same JSON document or form. A JSON body is walked only when its
bytes hold a backslash (every control character and every surrogate in JSON text is written
as an escape) or the UTF-8 lead byte of the surrogate block (`json.loads` lets those through).

Query strings and url-encoded forms are checked as the client sent them, percent-decoded to
bytes and then decoded as UTF-8 strictly: the server decodes them leniently (an invalid
sequence becomes U+FFFD), which would hide malformed input. A multipart part that is not UTF-8
is read by Starlette as Latin-1, before this sees it: valid text either way, so it can hold no
surrogate, and its control characters are refused like any other.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import Message as MimeHeader
from urllib.parse import unquote_to_bytes

from fastapi import Request, params
from fastapi.routing import APIRoute
from starlette.datastructures import FormData, UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixelfleet.client_text import (
    UnsafeText,
    printable,
    problem_in_json,
    problem_with,
    problem_with_bytes,
)
from pixelfleet.errors import FieldError
from pixelfleet.observability.log_context import REQUEST_ID_HEADER

# Where `KeepFormBody` leaves the bytes of a url-encoded form.
FORM_BODY_KEY = "pixelfleet.form_body"
URLENCODED = b"application/x-www-form-urlencoded"

_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")
# Control characters in a header value; a tab is allowed there (RFC 9110).
_UNSAFE_HEADER_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f]")
# Query strings and paths without these bytes are plain printable ASCII: nothing to decode.
_ESCAPED_OR_UNSAFE = re.compile(rb"[^\x21-\x7e]|[%+]")
# Only a JSON body with one of these bytes can hold an unsafe text (see the module's doc).
_JSON_ESCAPE = b"\\"
_SURROGATE_LEAD_BYTE = b"\xed"


def _content_type(scope: Scope) -> bytes:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return bytes(value).split(b";", 1)[0].strip().lower()
    return b""


class KeepFormBody:
    """Keeps a copy of a url-encoded form's bytes as they arrive, for the check below: Starlette
    parses the form from the stream and keeps only its lenient decoding. Such a form is small
    (the login form; the body limit outside bounds it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _content_type(scope) != URLENCODED:
            await self.app(scope, receive, send)
            return
        kept = bytearray()
        scope[FORM_BODY_KEY] = kept

        async def keeping_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                kept.extend(message.get("body", b""))
            return message

        await self.app(scope, keeping_receive, send)


def _percent_decoded_pairs(raw: bytes) -> Iterator[tuple[bytes, bytes]]:
    """`a=1&b=x+y` → (b"a", b"1"), (b"b", b"x y"), as bytes: nothing decoded as text yet."""
    for pair in raw.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        yield (
            unquote_to_bytes(name.replace(b"+", b" ")),
            unquote_to_bytes(value.replace(b"+", b" ")),
        )


def _problem_in_pairs(raw: bytes, *, multiline_values: bool) -> FieldError | None:
    if _ESCAPED_OR_UNSAFE.search(raw) is None:
        return None
    for name, value in _percent_decoded_pairs(raw):
        field = printable(name.decode("utf-8", "replace"))
        problem = problem_with_bytes(name)
        if problem is not None:
            return FieldError(field, f"is a parameter name that {problem}")
        problem = problem_with_bytes(value, multiline=multiline_values)
        if problem is not None:
            return FieldError(field, problem)
    return None


def _header_name(raw: bytes) -> str:
    """`idempotency-key` → `Idempotency-Key`, as the documentation writes it."""
    return "-".join(part.capitalize() for part in raw.decode("latin-1").split("-"))


def _problem_in_headers(scope: Scope) -> FieldError | None:
    headers = scope.get("headers", ())
    if _UNSAFE_HEADER_VALUE.search(b"\t".join([value for _, value in headers])) is None:
        return None  # one search over every value (joined by a tab, which is allowed)
    for name, value in headers:
        if name == _REQUEST_ID_KEY:
            continue  # an unsafe request id is replaced by a new one, never used (request_context)
        found = _UNSAFE_HEADER_VALUE.search(value)
        if found is not None:
            code_point = found.group()[0]
            return FieldError(
                _header_name(name), f"must not contain control characters (U+{code_point:04X})"
            )
    return None


def _problem_in_path(scope: Scope, route: APIRoute) -> FieldError | None:
    """Each path parameter, from the raw path's segment where the route's template has it."""
    names = route.param_convertors.keys()
    if not names:
        return None
    template = route.path_format.split("/")
    raw_path = scope.get("raw_path")
    if raw_path and _ESCAPED_OR_UNSAFE.search(raw_path) is None:
        return None
    segments = raw_path.split(b"/") if raw_path else []
    if len(segments) >= len(template):
        segments = segments[len(segments) - len(template) :]
        for part, segment in zip(template, segments, strict=True):
            if part.startswith("{") and part.endswith("}"):
                problem = problem_with_bytes(unquote_to_bytes(segment))
                if problem is not None:
                    return FieldError(part[1:-1].split(":")[0], problem)
        return None
    # A server that sends no raw path: what it decoded is all there is.
    for name, value in scope.get("path_params", {}).items():
        problem = problem_with(str(value))
        if problem is not None:
            return FieldError(name, problem)
    return None


def _is_json(content_type: bytes) -> bool:
    """As FastAPI decides whether to parse a body as JSON."""
    header = MimeHeader()
    header["content-type"] = content_type.decode("latin-1")
    subtype = header.get_content_subtype()
    return header.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def problem_in_form(form: FormData) -> FieldError | None:
    """The first text of a parsed form (field names, values, file names) that breaks the rule:
    for this module's check, and for a route that parses its form itself."""
    for name, value in form.multi_items():
        field = printable(name)
        problem = problem_with(name)
        if problem is not None:
            return FieldError(field, f"is a field name that {problem}")
        if isinstance(value, UploadFile):
            problem = problem_with(value.filename or "")
            if problem is not None:
                return FieldError(field, f"has a file name that {problem}")
        else:
            problem = problem_with(value, multiline=True)
            if problem is not None:
                return FieldError(field, problem)
    return None


async def _problem_in_body(request: Request, route: APIRoute) -> FieldError | None:
    body_field = route.body_field
    if body_field is None:
        return None  # a route that reads its body raw checks what it decodes itself
    content_type = _content_type(request.scope)
    if isinstance(body_field.field_info, params.Form):
        kept = request.scope.get(FORM_BODY_KEY)
        if content_type == URLENCODED and kept is not None:
            return _problem_in_pairs(bytes(kept), multiline_values=True)
        return problem_in_form(await request.form())  # what FastAPI parsed, kept by Starlette
    raw = await request.body()  # kept by Starlette since FastAPI read it
    if _JSON_ESCAPE not in raw and _SURROGATE_LEAD_BYTE not in raw:
        return None
    if not _is_json(content_type):
        return None  # FastAPI did not parse it; validation refuses bytes where JSON is due
    try:
        document = await request.json()  # parsed already: Starlette returns its copy
    except ValueError:
        return None
    return problem_in_json(document, "")


async def refuse_unsafe_request_text(request: Request) -> None:
    """The application's first dependency: a 422 for the first text that breaks the rule."""
    scope = request.scope
    problem = _problem_in_headers(scope)
    route = scope.get("route")
    if problem is None and isinstance(route, APIRoute):
        problem = _problem_in_path(scope, route)
    if problem is None:
        problem = _problem_in_pairs(scope.get("query_string", b""), multiline_values=False)
    if problem is None and isinstance(route, APIRoute):
        problem = await _problem_in_body(request, route)
    if problem is not None:
        raise UnsafeText(problem)
