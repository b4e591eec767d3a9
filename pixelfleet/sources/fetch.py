"""Fetching a source image from a URL, as guarded as a webhook (`pixelfleet.outbound`).

Each hop (the URL, then each redirect's target, at most `MAX_REDIRECTS`) is checked and resolved
before it is contacted, and the request goes to the checked address. The whole fetch, however
slowly its bytes trickle, is bounded by one timeout. The bytes go into a staged object as they
arrive, never more than the upload limit: a declared length over it is refused before the body
is read, and a body that grows past it is cut off. The first bytes must be the signature of an
accepted image format, or the rest is not read. The fetched image is checked as an upload is
(its header sniffed) by whoever uses the staged object."""

from __future__ import annotations

import asyncio

import httpx

from pixelfleet.errors import FieldError
from pixelfleet.imaging.errors import UnsupportedImage
from pixelfleet.imaging.source_formats import has_accepted_signature
from pixelfleet.observability.metrics import SOURCE_FETCH_BYTES, SOURCE_FETCHES
from pixelfleet.outbound import UrlRefused, pinned_request
from pixelfleet.sources.errors import SourceRefused, SourceTooLarge, SourceUnreachable
from pixelfleet.storage import StagedObject

MAX_REDIRECTS = 3
USER_AGENT = "PixelFleet-Sources/1.0"
FIELD = "source.url"
_OUTCOMES: dict[type[Exception], str] = {
    SourceRefused: "refused",
    SourceUnreachable: "unreachable",
    SourceTooLarge: "too_large",
    UnsupportedImage: "not_an_image",
}
# An AVIF's brands may sit this far into its `ftyp` box.
_SIGNATURE_WINDOW = 4096


def _too_large(limit: int) -> SourceTooLarge:
    return SourceTooLarge(f"The source is larger than {limit} bytes (max_upload_bytes).")


async def fetch_source(
    client: httpx.AsyncClient,
    url: str,
    staged: StagedObject,
    *,
    limit: int,
    within: float,
    allow_private: bool,
) -> int:
    """Fetches the image at `url` into `staged`, all of it `within` seconds: how many bytes it
    has. Raises SourceRefused, SourceUnreachable, SourceTooLarge or UnsupportedImage. `client`
    must not follow redirects (`outbound.outbound_client`): each one is checked here."""
    try:
        async with asyncio.timeout(within):
            received = await _fetch(client, url, staged, limit, allow_private)
    except TimeoutError:
        SOURCE_FETCHES.labels("unreachable").inc()
        raise SourceUnreachable(
            f"The source did not arrive within {within:g} seconds "
            "(source_fetch_timeout_seconds)."
        ) from None
    except (SourceRefused, SourceUnreachable, SourceTooLarge, UnsupportedImage) as refused:
        SOURCE_FETCHES.labels(_OUTCOMES[type(refused)]).inc()
        raise
    SOURCE_FETCHES.labels("fetched").inc()
    SOURCE_FETCH_BYTES.inc(received)
    return received


async def _fetch(
    client: httpx.AsyncClient, url: str, staged: StagedObject, limit: int, allow_private: bool
) -> int:
    for _ in range(MAX_REDIRECTS + 1):
        try:
            target = await pinned_request(url, allow_private=allow_private)
        except UrlRefused as exc:
            raise SourceRefused(
                f"The source url {exc}.", errors=[FieldError(FIELD, str(exc))]
            ) from None
        except OSError:
            raise SourceUnreachable("The source host could not be resolved.") from None
        headers = {
            **target.headers,
            "Accept": "image/*",
            "Accept-Encoding": "identity",
            "User-Agent": USER_AGENT,
        }
        try:
            async with client.stream(
                "GET", target.url, headers=headers, extensions=target.extensions
            ) as response:
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        raise SourceUnreachable(
                            f"The source answered {response.status_code} without a Location."
                        )
                    url = str(httpx.URL(url).join(location))
                    continue
                if response.status_code != 200:
                    raise SourceUnreachable(f"The source answered HTTP {response.status_code}.")
                return await _receive(response, staged, limit)
        except httpx.HTTPError as exc:
            raise SourceUnreachable(
                f"The source could not be fetched ({type(exc).__name__})."
            ) from None
    raise SourceUnreachable(f"The source redirected more than {MAX_REDIRECTS} times.")


async def _receive(response: httpx.Response, staged: StagedObject, limit: int) -> int:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    received = 0
    head = b""
    async for chunk in response.aiter_raw():
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        if len(head) < _SIGNATURE_WINDOW:
            head += chunk[: _SIGNATURE_WINDOW - len(head)]
            if len(head) >= _SIGNATURE_WINDOW:
                _check_signature(head)
        staged.file.write(chunk)
    if len(head) < _SIGNATURE_WINDOW:  # the whole source is shorter than the window
        _check_signature(head)
    return received


def _check_signature(head: bytes) -> None:
    if not has_accepted_signature(head):
        raise UnsupportedImage("The source is not an image in an accepted format.")
