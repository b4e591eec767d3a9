"""The operator's own metrics: how often each handler ran and how often it raised, and what the
autoscaler measured and decided for each WorkerPool (served on the operator's metrics port)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from pixelfleet.observability.metrics import (
    AUTOSCALER_CURRENT_REPLICAS,
    AUTOSCALER_DESIRED_REPLICAS,
    OPERATOR_ERRORS,
    OPERATOR_RECONCILES,
    QUEUE_BACKLOG,
)
from pixelfleet.operator.resources import IMAGEJOB_PLURAL, WORKERPOOL_PLURAL

IMAGEJOBS = IMAGEJOB_PLURAL
WORKERPOOLS = WORKERPOOL_PLURAL

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def handler_run(resource: str, handler: str) -> Iterator[None]:
    """Counts one run of a handler, and counts it again as an error if it raises (the
    exception goes on to Kopf, or to the daemon's loop, unchanged)."""
    OPERATOR_RECONCILES.labels(resource, handler).inc()
    try:
        yield
    except Exception:
        OPERATOR_ERRORS.labels(resource, handler).inc()
        raise


def counted(
    resource: str, handler: str
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """`handler_run` around every call of an async Kopf handler. `functools.wraps` keeps the
    handler's name, which Kopf uses as its id in the resource's annotations."""

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        @functools.wraps(fn)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            with handler_run(resource, handler):
                return await fn(*args, **kwargs)

        return run

    return decorate


# The queue each pool measured last, so a queue's backlog series goes when no pool reads it.
_queue_of_pool: dict[str, str] = {}


def record_evaluation(pool: str, queue: str, *, waiting: int, desired: int, current: int) -> None:
    """What one scaling evaluation of `pool` measured (the tasks waiting in its queue, as the
    API's /metrics measures them too) and decided."""
    previous = _queue_of_pool.get(pool)
    _queue_of_pool[pool] = queue
    if previous is not None and previous != queue:
        _forget_queue_unless_read(previous)
    QUEUE_BACKLOG.labels(queue).set(waiting)
    AUTOSCALER_DESIRED_REPLICAS.labels(pool).set(desired)
    AUTOSCALER_CURRENT_REPLICAS.labels(pool).set(current)


def forget_pool(pool: str) -> None:
    """Drops the series of a pool nobody evaluates any more (its WorkerPool was deleted), so
    neither a stale value nor a label of a pool that is gone stays behind."""
    AUTOSCALER_DESIRED_REPLICAS.remove(pool)
    AUTOSCALER_CURRENT_REPLICAS.remove(pool)
    queue = _queue_of_pool.pop(pool, None)
    if queue is not None:
        _forget_queue_unless_read(queue)


def _forget_queue_unless_read(queue: str) -> None:
    if queue not in _queue_of_pool.values():
        QUEUE_BACKLOG.remove(queue)
