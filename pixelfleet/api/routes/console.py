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

from pixelfleet.api.deps import ContextDep
from pixelfleet.console import ASSETS, SECURITY_HEADERS, security_headers
from pixelfleet.storage import Storage

router = APIRouter(include_in_schema=False)


_PAGE_HEADERS: WeakKeyDictionary[Storage, dict[str, str]] = WeakKeyDictionary()


def _page_headers(storage: Storage) -> dict[str, str]:
    """The page's headers: its policy lets the console's direct uploads reach the storage
    where the storage takes them itself (the origin of a presigned PUT, signed here, locally,
    for a key that is never used). Worked out once per storage."""
    headers = _PAGE_HEADERS.get(storage)
    if headers is None:
        presigned = storage.presigned_put("uploads/origin", "image/png", 1, 60)
        url = urlsplit(presigned.url) if presigned else None
        headers = security_headers(f"{url.scheme}://{url.netloc}" if url else None)
        _PAGE_HEADERS[storage] = headers
    return headers


@router.get("/")
@router.head("/")
async def console_page(ctx: ContextDep) -> FileResponse:
    return FileResponse(ASSETS / "index.html", headers=_page_headers(ctx.storage))


class ConsoleFiles(StaticFiles):
    """Static files with the console's security and caching headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_console(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/console", ConsoleFiles(directory=ASSETS), name="console")
