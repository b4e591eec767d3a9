"""Swagger UI at `/docs` and ReDoc at `/redoc` (for browsers, not part of the API's schema),
their files under `/docs/static/`."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from pixelfleet.api.docs_pages import (
    SECURITY_HEADERS,
    STATIC_PACKAGES,
    STATIC_PATH,
    redoc_page,
    swagger_ui_page,
)

router = APIRouter(include_in_schema=False)


def _document(request: Request) -> tuple[str, str, str]:
    app = request.app
    return app.title, request.scope.get("root_path", ""), app.openapi_url


@router.api_route("/docs", methods=["GET", "HEAD"])
async def swagger_ui(request: Request) -> HTMLResponse:
    return HTMLResponse(swagger_ui_page(*_document(request)), headers=SECURITY_HEADERS)


@router.api_route("/redoc", methods=["GET", "HEAD"])
async def redoc(request: Request) -> HTMLResponse:
    return HTMLResponse(redoc_page(*_document(request)), headers=SECURITY_HEADERS)


class DocsFiles(StaticFiles):
    """The pages' files, with their security headers (and validators, to be revalidated)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_api_docs(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(STATIC_PATH, DocsFiles(packages=STATIC_PACKAGES), name="api-docs")
