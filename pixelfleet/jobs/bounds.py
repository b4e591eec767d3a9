"""What bounds one task beside the service's limits: its own number of attempts (a Kubernetes
job's `backoffLimit` + 1) and its deadline (its `activeDeadlineSeconds` from admission). Past
either it fails, refunded like any failure, with a code of its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

DEADLINE_EXCEEDED = "deadline-exceeded"
BACKOFF_LIMIT_EXCEEDED = "backoff-limit-exceeded"


@dataclass(frozen=True)
class Exhausted:
    """How a task that used its last attempt fails."""

    code: str
    message: str


def attempts_allowed(own: int | None, service_limit: int) -> int:
    return own if own is not None else service_limit


def exhausted(own: int | None, attempts: int, code: str, message: str) -> Exhausted:
    """The failure of a task after `attempts`: the service's own `code` and `message`, or,
    when the task set its own limit, a failure that names that limit."""
    if own is None:
        return Exhausted(code, message)
    return Exhausted(
        BACKOFF_LIMIT_EXCEEDED,
        f"{message} Its limit was {own} attempt(s) (backoffLimit {own - 1}).",
    )


def seconds_left(deadline: datetime | None, now: datetime) -> float | None:
    """Seconds until the task's deadline (0 once past it); None without one."""
    if deadline is None:
        return None
    return max(0.0, (deadline - now).total_seconds())


def deadline_message(deadline: datetime) -> str:
    return f"The task passed its deadline ({deadline.isoformat(timespec='seconds')})."
