"""The operator's own metrics: how often each handler ran and how often it raised, and what the
autoscaler measured and decided for each WorkerPool (served on the operator's metrics port)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pixelfleet.observability.metrics import (
    AUTOSCALER_CURRENT_REPLICAS,
    AUTOSCALER_DESIRED_REPLICAS,
    OPERATOR_ERRORS,
    OPERATOR_RECONCILES,
    QUEUE_BACKLOG,
)
from pixelfleet.operator.resources import (
    CREDITBINDING_PLURAL,
    IMAGEJOB_PLURAL,
    WORKERPOOL_PLURAL,
)

IMAGEJOBS = IMAGEJOB_PLURAL
CREDITBINDINGS = CREDITBINDING_PLURAL
WORKERPOOLS = WORKERPOOL_PLURAL
CREATE, RESYNC, DELETE, SCALE = "create", "resync", "delete", "scale"
HANDLERS: dict[str, tuple[str, ...]] = {
    IMAGEJOBS: (CREATE, RESYNC, DELETE),
    CREDITBINDINGS: (RESYNC,),
    WORKERPOOLS: (SCALE,),
}
"""Each resource's handlers, by the names their runs are counted under."""



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


# The queue each pool measured last, so a queue's backlog series goes when no pool reads it.
_queue_of_pool: dict[str, str] = {}


def record_evaluation(pool: str, queue: str, *, desired: int, current: int) -> None:
    """What one scaling evaluation of `pool` decided; the backlog of its queue was recorded as
    it was measured (`pixelfleet/worker/queue_backlog.py`, as the API's /metrics does)."""
    previous = _queue_of_pool.get(pool)
    _queue_of_pool[pool] = queue
    if previous is not None and previous != queue:
        _forget_queue_unless_read(previous)
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
