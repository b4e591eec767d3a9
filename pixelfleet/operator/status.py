"""What an ImageJob's status says, computed from the task's record or from one of its events.
Pure functions: no Kopf, no Kubernetes API, no database."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pixelfleet.events import TaskEvent
from pixelfleet.jobs.result_urls import ResultUrls
from pixelfleet.models import Task
from pixelfleet.operator.resources import FINISHED_PHASES, Condition, ImageJobStatus, Output, Phase

PHASES: dict[str, Phase] = {
    "queued": "Queued",
    "running": "Running",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "cancelled": "Cancelled",
}


def human_duration(milliseconds: int) -> str:
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _transitioned_at(
    kind: str, status: str, previous: Sequence[Mapping[str, Any]], now: datetime
) -> datetime:
    """When the condition took its status: as written before while the status holds (a
    condition's `lastTransitionTime` moves only when its status changes), else now."""
    for written in previous:
        if written.get("type") == kind and written.get("status") == status:
            with contextlib.suppress(TypeError, ValueError):
                return datetime.fromisoformat(str(written["lastTransitionTime"]))
    return now


ConditionStatus = Literal["True", "False", "Unknown"]


def reason_of(slug: str) -> str:
    """A problem's or failure's code as a condition's reason (CamelCase, as Kubernetes writes
    them): `deadline-exceeded` → `DeadlineExceeded`."""
    return "".join(part.capitalize() for part in re.split(r"[^a-z0-9]+", slug) if part)


def _conditions(
    phase: Phase,
    message: str | None,
    generation: int | None,
    previous: Sequence[Mapping[str, Any]],
    admission: tuple[ConditionStatus, str] = ("True", "Admitted"),
    failure: str | None = None,
) -> list[Condition]:
    """`Admitted` (a task was made and charged: its reason says why not), `Finished` and
    `Succeeded`, each with the reason the phase gives (a failure's own, when it has one:
    `DeadlineExceeded`, `BackoffLimitExceeded`, ...)."""
    now = datetime.now(UTC)
    finished = phase in FINISHED_PHASES
    admitted, refusal = admission
    reason = failure or phase
    statuses: dict[str, tuple[ConditionStatus, str]] = {
        "Admitted": (admitted, refusal),
        "Finished": ("True" if finished else "False", reason),
        "Succeeded": (
            "True" if phase == "Succeeded" else ("False" if finished else "Unknown"),
            reason,
        ),
    }
    return [
        condition(kind, status, reason, message or "", generation, previous, now)
        for kind, (status, reason) in statuses.items()
    ]


def condition(
    kind: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    previous: Sequence[Mapping[str, Any]],
    now: datetime | None = None,
) -> Condition:
    """One condition, keeping the transition time `previous` gives it while its status holds."""
    return Condition(
        type=kind,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=_transitioned_at(kind, status, previous, now or datetime.now(UTC)),
        observed_generation=generation,
    )


def rejected_status(
    reason: str, message: str, generation: int | None, previous: Mapping[str, Any] | None
) -> ImageJobStatus:
    """A job applied by hand that was not admitted (`reason`: NoCreditBinding, BudgetExceeded,
    ...): nothing was charged, and nothing will run."""
    return ImageJobStatus(
        phase="Rejected",
        message=f"{reason}: {message}",
        conditions=_conditions(
            "Rejected",
            message,
            generation,
            (previous or {}).get("conditions") or [],
            admission=("False", reason),
        ),
        observed_generation=generation,
    )


def status_of_task(
    task: Task,
    generation: int | None,
    previous: Mapping[str, Any] | None = None,
    urls: ResultUrls | None = None,
) -> ImageJobStatus:
    """The whole status, from the database's record of the task; `previous` is the status
    the ImageJob holds now (its conditions keep their transition times where they hold).
    With `urls`, a succeeded task's outputs carry signed URLs of their results."""
    phase = PHASES.get(task.status, "Pending")
    duration_ms = None
    if task.started_at is not None and task.finished_at is not None:
        duration_ms = max(0, int((task.finished_at - task.started_at).total_seconds() * 1000))
    message = task.error_message if task.error_code else None
    if phase == "Cancelled":
        message = "Cancelled."
    signed_at = datetime.now(UTC)
    signed = urls is not None and phase == "Succeeded"
    return ImageJobStatus(
        phase=phase,
        task_id=str(task.id),
        progress=task.progress,
        stage=task.stage,
        attempts=task.attempts,
        worker=task.worker,
        started_at=task.started_at,
        finished_at=task.finished_at,
        duration_ms=duration_ms,
        duration=human_duration(duration_ms) if duration_ms is not None else None,
        outputs=[
            Output(
                name=o.name,
                format=o.format,
                width=o.width,
                height=o.height,
                bytes=o.bytes,
                url=urls.url(task.id, o.name, signed_at) if urls is not None and signed else None,
                placeholder=o.placeholder,
                dominant_color=o.dominant_color,
            )
            for o in task.outputs
        ],
        message=f"{task.error_code}: {message}" if task.error_code else message,
        conditions=_conditions(
            phase,
            message,
            generation,
            (previous or {}).get("conditions") or [],
            failure=reason_of(task.error_code) if phase == "Failed" and task.error_code else None,
        ),
        observed_generation=generation,
    )


def status_patch_of_event(event: TaskEvent) -> dict[str, Any]:
    """The part of the status one progress event changes (final states come from the record)."""
    patch: dict[str, Any] = {
        "phase": PHASES.get(event.status, "Pending"),
        "progress": event.progress,
        "stage": event.stage,
        "attempts": event.attempts,
        "worker": event.worker,
    }
    if event.status == "running" and event.stage == "starting":
        patch["startedAt"] = event.at.isoformat()
    return patch


def as_patch(status: ImageJobStatus) -> dict[str, Any]:
    """The status as a merge patch. What the record has not (yet) set is left out rather than
    sent as null: a status made from a record read a moment ago (a handler's) must not erase
    what a newer event has written meanwhile (a worker's `startedAt`)."""
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def differs(
    current: dict[str, Any] | None,
    wanted: dict[str, Any],
    urls: ResultUrls | None = None,
) -> bool:
    """Whether the stored status disagrees with the wanted one on what PixelFleet owns (the
    conditions' timestamps aside, and the outputs' signed URLs while they are good: with
    `urls`, one past half its lifetime is to be signed again)."""
    current = current or {}
    for key, value in wanted.items():
        if key == "outputs":
            held = current.get(key) or []
            if _unsigned(value) != _unsigned(held) or (
                any("url" in o for o in value) and not all("url" in o for o in held)
            ):
                return True
            now = datetime.now(UTC)
            if urls is not None and any(
                urls.past_half_life(str(o["url"]), now) for o in held if "url" in o
            ):
                return True
        elif key == "conditions":
            mine = [(c.get("type"), c.get("status"), c.get("reason")) for c in value]
            theirs = [
                (c.get("type"), c.get("status"), c.get("reason"))
                for c in current.get("conditions") or []
            ]
            if mine != theirs:
                return True
        elif current.get(key) != value:
            return True
    return False


def _unsigned(outputs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in output.items() if k != "url"} for output in outputs]
