"""Where a task runs and what bounds it, beside its work: set by whoever asks for the task (a
Kubernetes ImageJob's `queue`, `priority`, budget, `activeDeadlineSeconds`, `backoffLimit`); an
API submission takes the defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """A named limit on what tasks admitted under it may spend: charged minus refunded."""

    name: str
    limit: int


@dataclass(frozen=True)
class Placement:
    queue: str | None = None
    """The worker queue (None: the sending process's own)."""
    priority: int = 0
    """0-9: within its queue, a higher priority is taken first."""
    budget: Budget | None = None
    resource_name: str | None = None
    """The `namespace/name` of the resource that asked for the task, when not PixelFleet's."""
    active_deadline_seconds: int | None = None
    """From the submission: past it, the task fails wherever it is."""
    backoff_limit: int | None = None
    """Attempts after the first (None: the service's own limit)."""


DEFAULT_PLACEMENT = Placement()
