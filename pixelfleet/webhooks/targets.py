"""Where webhooks may go: the guard of `pixelfleet.outbound` (against server-side request
forgery), applied to callback URLs.

At submission a callback URL must be a plain http(s) URL without credentials, and not a literal
private address or `localhost`. At delivery its host is resolved again and refused when ANY of
its addresses is not public; the request then goes to the checked address itself, so a name that
resolves differently a moment later (DNS rebinding) cannot steer it inside the network.
"""

from __future__ import annotations

from pixelfleet.errors import FieldError, InvalidInput
from pixelfleet.outbound import (
    MAX_URL_LENGTH,
    PinnedRequest,
    UrlRefused,
    check_url,
    pinned_request,
)

MAX_CALLBACK_URL_LENGTH = MAX_URL_LENGTH
FIELD = "callback_url"


class TargetRefused(Exception):
    """A delivery target that is not a public address (never retried)."""


def check_callback_url(url: str, *, allow_private_targets: bool = False) -> str:
    """The URL, if webhooks may be sent to it; else `InvalidInput` naming `callback_url`."""
    try:
        return check_url(url, allow_private=allow_private_targets)
    except UrlRefused as exc:
        raise InvalidInput(
            f"The callback_url {exc}.", errors=[FieldError(FIELD, str(exc))]
        ) from None


async def delivery_target(url: str, *, allow_private_targets: bool) -> PinnedRequest:
    """Where to send a webhook for `url`: `TargetRefused` when it may not be sent there (the
    host has a non-public address, say), `OSError` when it cannot be resolved now (worth
    trying again later)."""
    try:
        return await pinned_request(url, allow_private=allow_private_targets)
    except UrlRefused as exc:
        message = str(exc)
        if message.startswith("resolves to"):
            message = f"the callback host {message}"
        raise TargetRefused(message) from None
