from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from pixelfleet.api.deps import ContextDep
from pixelfleet.api.problems import problem_response
from pixelfleet.schema_migrations import is_at_head

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(ctx: ContextDep) -> JSONResponse | dict[str, str]:
    """The database answers and is migrated to the code's schema."""
    try:
        async with ctx.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        migrated = await is_at_head(ctx.engine)
    except Exception as exc:
        return problem_response(
            503, "not-ready", "Not ready", f"The database is unreachable: {type(exc).__name__}."
        )
    if not migrated:
        return problem_response(
            503, "not-ready", "Not ready", "The database is not migrated: run `pixelfleet migrate`."
        )
    return {"status": "ready", "database": "ok"}
