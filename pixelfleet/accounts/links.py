"""The links mailed to account holders: pages of the console, the token in a `token` query
parameter, under `PIXELFLEET_PUBLIC_URL` (the address users reach; never the request's own Host
header, which a client chooses). Without one, the address `pixelfleet up` serves by default."""

from __future__ import annotations

from urllib.parse import urlencode

from pixelfleet.settings import Settings

DEFAULT_BASE = "http://127.0.0.1:8000"
PASSWORD_RESET_PAGE = "/reset-password"  # noqa: S105 (a path)
EMAIL_VERIFICATION_PAGE = "/verify-email"


class AccountLinks:
    def __init__(self, settings: Settings) -> None:
        self._base = (settings.public_url or DEFAULT_BASE).rstrip("/")

    def _page(self, path: str, token: str) -> str:
        return f"{self._base}{path}?{urlencode({'token': token})}"

    def password_reset(self, token: str) -> str:
        return self._page(PASSWORD_RESET_PAGE, token)

    def email_verification(self, token: str) -> str:
        return self._page(EMAIL_VERIFICATION_PAGE, token)
