"""The web console: the page at `/` and its files under `/console/` (not part of the API's
schema: they are for browsers, not clients)."""

from __future__ import annotations

from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from pixelfleet.accounts.links import EMAIL_VERIFICATION_PAGE, PASSWORD_RESET_PAGE
from pixelfleet.api.deps import ContextDep
from pixelfleet.console import ASSETS, SECURITY_HEADERS, security_headers
from pixelfleet.storage import Storage

router = APIRouter(include_in_schema=False)


_STORAGE_ORIGINS: WeakKeyDictionary[Storage, str | None] = WeakKeyDictionary()


def _origin(url: str | None) -> str | None:
    parts = urlsplit(url) if url else None
    return f"{parts.scheme}://{parts.netloc}" if parts and parts.netloc else None


def _storage_origin(storage: Storage) -> str | None:
    """Where the storage takes and gives bytes itself, when not through this origin: the
    origin of a presigned PUT (signed here, locally, for a key that is never used). Worked out
    once per storage."""
    if storage not in _STORAGE_ORIGINS:
        presigned = storage.presigned_put("uploads/origin", "image/png", 1, 60)
        _STORAGE_ORIGINS[storage] = _origin(presigned.url if presigned else None)
    return _STORAGE_ORIGINS[storage]


@router.get("/")
@router.head("/")
# The pages a mailed link opens: the same page, which reads its path and token.
@router.get(PASSWORD_RESET_PAGE)
@router.head(PASSWORD_RESET_PAGE)
@router.get(EMAIL_VERIFICATION_PAGE)
@router.head(EMAIL_VERIFICATION_PAGE)
async def console_page(ctx: ContextDep) -> FileResponse:
    # The page's policy lets its direct uploads reach the storage, and its images come from
    # the storage (a result's redirect) or from the public address results are linked under.
    headers = security_headers(_storage_origin(ctx.storage), _origin(ctx.settings.public_url))
    return FileResponse(ASSETS / "index.html", headers=headers)


class ConsoleFiles(StaticFiles):
    """Static files with the console's security and caching headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_console(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/console", ConsoleFiles(directory=ASSETS), name="console")
