from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from pixelfleet.api.deps import ContextDep
from pixelfleet.api.problems import PROBLEM_MEDIA_TYPE, problem_response
from pixelfleet.db import ping
from pixelfleet.schema_migrations import schema_state

log = logging.getLogger(__name__)

router = APIRouter(tags=["ops"])


@router.get("/healthz")
@router.head("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=None,
    responses={
        503: {
            "description": "`not-ready`: the database (or Redis) is unreachable, or the "
            "database is not migrated.",
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
    },
)
@router.head("/readyz", response_model=None, include_in_schema=False)
async def readyz(ctx: ContextDep) -> JSONResponse | dict[str, str]:
    """The database answers and its schema is the code's, or newer (a rolling upgrade has
    migrated it: old pods keep serving); Redis answers where used."""
    try:
        await ping(ctx.engine)
        migrated = await schema_state(ctx.engine) != "behind"
    except Exception:
        log.warning("readiness check: the database is unreachable", exc_info=True)
        return problem_response(503, "not-ready", "Not ready", "The database is unreachable.")
    if not migrated:
        return problem_response(
            503, "not-ready", "Not ready", "The database is not migrated: run `pixelfleet migrate`."
        )
    if ctx.redis is None:
        return {"status": "ready", "database": "ok"}
    try:
        await ctx.redis.ping()
    except (RedisError, OSError):
        log.warning("readiness check: Redis is unreachable", exc_info=True)
        return problem_response(503, "not-ready", "Not ready", "Redis (the broker) is unreachable.")
    return {"status": "ready", "database": "ok", "redis": "ok"}
