"""How a stored result is answered, whichever route names it (the owner's, or a signed URL):
its validators, a 304 for a current copy, one byte range, `HEAD`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import Request, Response, status
from fastapi.responses import RedirectResponse, StreamingResponse
from prometheus_client import Counter

from pixelfleet.api.http_caching import http_date, not_modified, range_applies, requested_range
from pixelfleet.api.problems import problem_responses
from pixelfleet.db import utcnow
from pixelfleet.errors import PixelFleetError
from pixelfleet.jobs import results
from pixelfleet.jobs.results import StoredResult
from pixelfleet.observability.metrics import DELIVERED_BYTES
from pixelfleet.storage import PresignedAnswer, Storage

RESULT_HEADERS_DOC = (
    "A result never changes: it carries a strong `ETag` and `Last-Modified` "
    "(`If-None-Match` and `If-Modified-Since` answer 304), and takes one byte `Range` (206; "
    "`If-Range` as usual; past the end a 416). `HEAD` answers the headers alone. An output "
    "of format `auto` is sent as AVIF or WebP to a reader whose `Accept` names it (the "
    "higher `q`; AVIF on a tie), else as its JPEG or PNG, with `Vary: Accept`."
)


def result_answers(*problems: type[PixelFleetError]) -> dict[int | str, dict[str, Any]]:
    """The documented answers of a route that serves a result: the image's bytes, of the type
    its `Content-Type` names. `application/octet-stream` stands beside `image/*` for client
    generators that read a body as bytes only under that name (openapi-python-client)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    image = {"image/*": binary, "application/octet-stream": binary}
    return {
        200: {"content": image, "description": "The processed image."},
        206: {
            "content": image,
            "description": "The bytes of the one `Range` asked for (`Content-Range` says which).",
        },
        304: {"description": "The copy `If-None-Match` (or `If-Modified-Since`) names is current."},
        **problem_responses(*problems),
    }


def private_until(expires_at: datetime | None) -> str:
    """`Cache-Control` for a copy only its receiver may keep, until `expires_at`."""
    seconds = 0 if expires_at is None else int((expires_at - utcnow()).total_seconds())
    return f"private, max-age={max(0, seconds)}"


def presigned_redirect(
    storage: Storage, result: StoredResult, until: datetime
) -> Response | None:
    """A 302 to a presigned GET of the result in its storage, good until `until` (the bytes
    then skip the API); None where the storage signs no such URL."""
    cache_control = private_until(until)
    seconds = max(1, int((until - utcnow()).total_seconds()))
    answer = PresignedAnswer(
        content_type=result.content_type,
        content_disposition=_inline(result.filename),
        cache_control=cache_control,
    )
    location = storage.presigned_get(result.key, seconds, answer)
    if location is None:
        return None
    # The redirect may be kept as long as where it points works.
    headers = {"Cache-Control": cache_control, **_variance(result)}
    return RedirectResponse(location, status_code=status.HTTP_302_FOUND, headers=headers)


def _variance(result: StoredResult) -> dict[str, str]:
    """`Vary: Accept` for an answer picked by the reader's `Accept`, so a shared cache keeps
    one copy per kind of reader rather than sending an AVIF to one that cannot show it."""
    return {"Vary": "Accept"} if result.negotiated else {}


def _inline(filename: str) -> str:
    return f'inline; filename="{filename}"'


async def result_response(
    request: Request, storage: Storage, result: StoredResult, cache_control: str, *, route: str
) -> Response:
    """The stored result as `request` asks for it; `route` names the route for the count of
    bytes sent (`DELIVERED_BYTES`)."""
    asked = request.headers
    headers = {
        "ETag": result.etag,
        "Last-Modified": http_date(result.last_modified),
        "Cache-Control": cache_control,
        "Accept-Ranges": "bytes",
        **_variance(result),
    }
    if not_modified(
        result.etag,
        result.last_modified,
        asked.get("if-none-match"),
        asked.get("if-modified-since"),
    ):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    wanted = (
        requested_range(asked.get("range"), result.size)
        if range_applies(asked.get("if-range"), result.etag, result.last_modified)
        else None
    )
    headers["Content-Disposition"] = _inline(result.filename)
    answer = status.HTTP_200_OK
    start, length = 0, result.size
    if wanted is not None:
        answer = status.HTTP_206_PARTIAL_CONTENT
        start, length = wanted.start, wanted.length
        headers["Content-Range"] = wanted.content_range(result.size)
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=answer, headers=headers, media_type=result.content_type)
    chunks = await results.open_result(storage, result, start=start, length=length)
    return StreamingResponse(
        _counted(chunks, DELIVERED_BYTES.labels(route)),
        status_code=answer,
        media_type=result.content_type,
        headers=headers,
    )


async def _counted(chunks: AsyncIterator[bytes], sent: Counter) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        sent.inc(len(chunk))
        yield chunk
