"""The web console: the page at `/` and its files under `/console/` (not part of the API's
schema: they are for browsers, not clients)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from pixelfleet.console import ASSETS, SECURITY_HEADERS

router = APIRouter(include_in_schema=False)


@router.get("/")
@router.head("/")
async def console_page() -> FileResponse:
    return FileResponse(ASSETS / "index.html", headers=SECURITY_HEADERS)


class ConsoleFiles(StaticFiles):
    """Static files with the console's security and caching headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_console(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/console", ConsoleFiles(directory=ASSETS), name="console")
