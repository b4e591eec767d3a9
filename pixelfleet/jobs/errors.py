from __future__ import annotations

from pixelfleet.errors import Conflict, NotFound, PixelFleetError


class TaskNotFound(NotFound):
    slug = "task-not-found"
    title = "Task not found"


class IdempotencyKeyReused(Conflict):
    slug = "idempotency-key-reused"
    title = "Idempotency key already used for another request"


class ResultNotReady(Conflict):
    slug = "result-not-ready"
    title = "Result not ready"


class TaskAlreadyFinished(Conflict):
    slug = "task-already-finished"
    title = "Task already finished"


class ResultExpired(PixelFleetError):
    status = 410
    slug = "result-expired"
    title = "Result expired"


class VariantNotFound(NotFound):
    slug = "variant-not-found"
    title = "No such output"
