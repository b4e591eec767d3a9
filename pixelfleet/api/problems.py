"""Every error leaves the API as an RFC 9457 problem document (`application/problem+json`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from pixelfleet.errors import PROBLEM_BASE, FieldError, PixelFleetError
from pixelfleet.imaging.errors import ImageRejected

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
VALIDATION_TITLE = "Invalid input"  # a 422 for fields the request's schema refuses


def invalid_fields_detail(fields: Iterable[str]) -> str:
    return f"The request has invalid fields: {', '.join(sorted(set(fields)))}."


_STATUS_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "too-many-requests",
}


def problem_document(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: Sequence[FieldError] = (),
    members: Mapping[str, object] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        **(members or {}),
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    return body


def problem_of(error: PixelFleetError, instance: str | None = None) -> dict[str, Any]:
    """The problem document of a domain error."""
    return problem_document(
        error.status,
        error.slug,
        error.title,
        error.detail,
        instance=instance,
        errors=error.errors,
        members=error.members,
    )


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
    members: Mapping[str, object] | None = None,
) -> JSONResponse:
    body = problem_document(
        status, slug, title, detail, instance=instance, errors=errors, members=members
    )
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


_LOCATION_ROOTS = {"body", "query", "path", "header", "cookie", "form"}


def _field_path(loc: Sequence[int | str]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in _LOCATION_ROOTS:
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PixelFleetError)
    if isinstance(exc, ImageRejected):
        # A hostile or broken upload is the client's problem: worth a line (with the
        # request's id), never an ERROR that pages someone.
        log.info(
            "image refused on %s %s: %d %s: %s",
            request.method,
            request.url.path,
            exc.status,
            exc.slug,
            exc.detail,
        )
    return problem_response(
        exc.status,
        exc.slug,
        exc.title,
        exc.detail,
        instance=request.url.path,
        errors=exc.errors,
        headers=exc.headers or None,
        members=exc.members,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError.from_pydantic(_field_path(e.get("loc", ())), str(e.get("msg", "")))
        for e in exc.errors()
    ]
    return problem_response(
        422,
        "validation-error",
        VALIDATION_TITLE,
        invalid_fields_detail(e.field for e in errors),
        instance=request.url.path,
        errors=errors,
    )


def _methods_for(routes: Iterable[BaseRoute], scope: Scope) -> set[str]:
    """Every method some route takes at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in routes:
        nested = getattr(route, "original_router", None)  # an included router
        if nested is not None:
            methods |= _methods_for(nested.routes, scope)
            continue
        matched, _ = route.matches(scope)
        if matched is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return methods


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    slug = _STATUS_SLUGS.get(exc.status_code, phrase.lower().replace(" ", "-"))
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        allowed = _methods_for(request.app.routes, request.scope)
        if allowed:
            headers["Allow"] = ", ".join(sorted(allowed))
            detail = f"{request.method} is not allowed here; this path takes {headers['Allow']}."
    return problem_response(
        exc.status_code, slug, phrase, detail, instance=request.url.path, headers=headers or None
    )


# How long a client should wait before trying again when a backing service is away.
UNAVAILABLE_RETRY_AFTER_SECONDS = 5


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A backing service (the database, Redis, storage) could not be reached: nothing was
    stored, and the same request will work once it is back."""
    from pixelfleet.worker.transient import is_transient

    if not is_transient(exc):
        return await _unexpected_error(request, exc)
    log.warning("backing service unavailable on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(
        503,
        "service-unavailable",
        "Service unavailable",
        "A backing service is unreachable right now; nothing was changed. Try again shortly.",
        instance=request.url.path,
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500,
        "internal-error",
        "Internal server error",
        "Something went wrong on our side. The error was logged.",
        instance=request.url.path,
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PixelFleetError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import DBAPIError

    for unreachable in (DBAPIError, OSError, RedisConnectionError, RedisTimeoutError):
        app.add_exception_handler(unreachable, _unavailable)
    app.add_exception_handler(Exception, _unexpected_error)


class ProblemFieldError(BaseModel):
    field: str = Field(description="The field's dotted path: `pipeline.operations.0.width`.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document: the body of every error answer."""

    type: str = Field(description="A URI naming the kind of problem: `.../task-not-found`.")
    title: str
    status: int = Field(description="The HTTP status code of the answer.")
    detail: str
    instance: str | None = Field(default=None, description="The request's path.")
    errors: list[ProblemFieldError] | None = Field(
        default=None, description="Each invalid field, for a 422 `validation-error`."
    )
    quota: str | None = Field(
        default=None,
        description="For `quota-exceeded`: the quota, named as its setting in lower case "
        "without the `PIXELFLEET_` prefix (`max_assets_per_user`).",
    )
    limit: int | None = Field(default=None, description="For `quota-exceeded`: the quota's limit.")
    usage: int | None = Field(
        default=None, description="For `quota-exceeded`: what the account uses now."
    )
    requested: int | None = Field(
        default=None, description="For `quota-exceeded`: what the refused request would add."
    )


ProblemResponses = dict[int | str, dict[str, Any]]


def problem_responses(*errors: type[PixelFleetError]) -> ProblemResponses:
    """A route's `responses=` for the domain errors it may answer with, by their status."""
    lines: dict[int, list[str]] = {}
    for error in errors:
        lines.setdefault(error.status, []).append(f"`{error.slug}`: {error.title}.")
    return {
        status: {"description": " ".join(said), "content": {PROBLEM_MEDIA_TYPE: {}}}
        for status, said in sorted(lines.items())
    }


# The answers the handlers and middleware above can give on any route of a kind.
_EVERY_OPERATION = {
    422: "`validation-error`: a header, parameter or field holds text the API does not take "
    "(a control character, a lone surrogate, invalid UTF-8); `errors` names it.",
    503: "`service-unavailable`: a backing service (the database, Redis, storage) is unreachable; "
    "nothing was changed. Send the request again after `Retry-After` seconds."
}
_SIGNED_IN_OPERATION = {
    401: "`unauthorized`, `invalid-token`: no credential, or one that is invalid or expired.",
    403: "`insufficient-scope`: an API key without the scope this needs (or an API key where "
    "a login is needed); `account-disabled`.",
}
_OPERATION_WITH_BODY = {
    400: "`bad-request`: the body cannot be parsed (not UTF-8, broken multipart framing, a "
    "form field over its size limit).",
    413: "`payload-too-large`: the body is larger than this endpoint accepts.",
}
_OPERATION_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})
_SCHEMAS_REF = "#/components/schemas/"


def document_problems(openapi: dict[str, Any]) -> None:
    """Makes the OpenAPI document say what the handlers above do: every error answer, whether
    a route lists it or it is added here, is an `application/problem+json` `Problem` (never
    FastAPI's `HTTPValidationError`); any operation may answer 422 (`pixelfleet.api.request_text`)
    and 503, a signed-in one 401 and 403, one with a body 400 and 413."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template=_SCHEMAS_REF + "{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for path in openapi.get("paths", {}).values():
        for method, operation in path.items():
            if method not in _OPERATION_METHODS:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            added = dict(_EVERY_OPERATION)
            if operation.get("security"):
                added |= _SIGNED_IN_OPERATION
            if "requestBody" in operation:
                added |= _OPERATION_WITH_BODY
            for code, description in added.items():
                responses.setdefault(str(code), {"description": description})
            for status, response in responses.items():
                if status[:1] in {"4", "5"}:
                    media = response.get("content", {}).get(PROBLEM_MEDIA_TYPE, {})
                    media["schema"] = {"$ref": _SCHEMAS_REF + "Problem"}
                    response["content"] = {PROBLEM_MEDIA_TYPE: media}
    for unused in ("HTTPValidationError", "ValidationError"):  # in that order: one uses the other
        if f'"{_SCHEMAS_REF}{unused}"' not in json.dumps(openapi):
            schemas.pop(unused, None)
