"""`GET /metrics`: Prometheus' view of this process (and, in embedded mode, of its workers)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import Response
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from pixelfleet.api.deps import ContextDep
from pixelfleet.context import ProcessContext
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.jobs.turns import TurnRepository
from pixelfleet.observability import exposition
from pixelfleet.observability.metrics import QUEUE_BACKLOG
from pixelfleet.worker.names import control_queue
from pixelfleet.worker.queue_backlog import measure_backlog

log = logging.getLogger(__name__)

router = APIRouter(tags=["ops"])

EMBEDDED_QUEUE = "embedded"
"""The `queue` label of the embedded mode's backlog: its queue is the `tasks` table."""


async def measure_backlogs(ctx: ProcessContext) -> None:
    """Sets the backlog gauge from where tasks wait: Celery's Redis lists (measured as the
    autoscaler measures them), or (embedded) the tasks table. A source that does not answer
    leaves the last value."""
    try:
        if ctx.redis is not None:
            queue = ctx.settings.celery_queue
            async with ctx.read_sessions() as session:
                held = await TurnRepository.from_session(session).count_held(None)
            await measure_backlog(ctx.redis, queue, held)
            await measure_backlog(ctx.redis, control_queue(queue))
        else:
            async with ctx.read_sessions() as session:
                queued = await TaskRepository.from_session(session).count_queued()
            QUEUE_BACKLOG.labels(queue=EMBEDDED_QUEUE).set(queued)
    except (RedisError, SQLAlchemyError, OSError):
        log.warning("metrics: could not measure the queue backlog", exc_info=True)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {exposition.CONTENT_TYPE: {"schema": {"type": "string"}}},
            "description": "Metrics, in Prometheus' text exposition format.",
        }
    },
)
async def metrics(ctx: ContextDep) -> Response:
    """Prometheus metrics in the text exposition format."""
    await measure_backlogs(ctx)
    return Response(exposition.render(), media_type=exposition.CONTENT_TYPE)
