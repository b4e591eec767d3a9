"""The scaling policy.

The backlog counts what Celery's Redis transport hides from a list-length scaler: messages
delivered to a worker but not yet acknowledged (with `acks_late`, every task a worker holds,
running or prefetched) sit in a separate hash, not in the queue's list. Counting only the list
makes a busy pool look idle, and scaling it down kills busy workers.

- desired = clamp(ceil(backlog / targetTasksPerReplica), minReplicas, maxReplicas);
- from zero, the pool wakes only once the backlog reaches `activationTasks`;
- up at once; down only to the highest recommendation seen within the stabilization window;
- never to zero while any task is reserved or running."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PoolPolicy:
    min_replicas: int
    max_replicas: int
    target_tasks_per_replica: int
    activation_tasks: int = 1
    scale_down_stabilization_seconds: float = 300.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ValueError("0 <= minReplicas <= maxReplicas must hold")
        if self.target_tasks_per_replica < 1:
            raise ValueError("targetTasksPerReplica must be at least 1")
        if self.activation_tasks < 0 or self.scale_down_stabilization_seconds < 0:
            raise ValueError("activationTasks and the stabilization window cannot be negative")


@dataclass(frozen=True)
class QueueLoad:
    waiting: int  # messages in the queue's list
    reserved: int  # delivered to a worker, not acknowledged (running or prefetched)
    running: int  # tasks the database says are running on the pool's workers

    @property
    def in_flight(self) -> int:
        """Tasks workers hold. With acks_late a running task is also unacknowledged, so the two
        counts overlap: the larger one is the truth (the database also sees tasks whose
        message was already acknowledged, the transport sees prefetched ones)."""
        return max(self.reserved, self.running)

    @property
    def backlog(self) -> int:
        return self.waiting + self.in_flight


@dataclass(frozen=True)
class Recommendation:
    at: float
    replicas: int


@dataclass(frozen=True)
class Decision:
    desired: int
    recommended: int
    reason: str
    history: tuple[Recommendation, ...]


def _clamp(value: int, policy: PoolPolicy) -> int:
    return max(policy.min_replicas, min(policy.max_replicas, value))


def recommended_replicas(policy: PoolPolicy, load: QueueLoad, current: int) -> int:
    """What the load alone asks for, now."""
    backlog = load.backlog
    if current == 0 and load.in_flight == 0 and backlog < max(1, policy.activation_tasks):
        return _clamp(0, policy)  # asleep, and not enough work to wake up for
    wanted = math.ceil(backlog / policy.target_tasks_per_replica)
    if load.in_flight > 0:
        wanted = max(wanted, 1)
    return _clamp(wanted, policy)


def desired_replicas(
    policy: PoolPolicy,
    load: QueueLoad,
    current: int,
    history: tuple[Recommendation, ...],
    now: float,
) -> Decision:
    """The replica count to set now, and the recommendations to remember for next time."""
    recommended = recommended_replicas(policy, load, current)
    recent = [r for r in history if now - r.at < policy.scale_down_stabilization_seconds]
    window = (*recent, Recommendation(now, recommended))
    if recommended >= current:
        desired = recommended
        reason = (
            f"backlog {load.backlog} needs {recommended}" if recommended > current else "steady"
        )
    else:
        # Down only as far as the busiest moment of the window allows (within today's bounds:
        # the window may remember a higher maximum).
        desired = _clamp(min(current, max(r.replicas for r in window)), policy)
        reason = (
            f"backlog {load.backlog} needs {recommended}; holding {desired} for the "
            f"{policy.scale_down_stabilization_seconds:g}s window"
            if desired > recommended
            else f"backlog {load.backlog} needs {recommended}"
        )
    if load.in_flight > 0 and desired == 0 and policy.max_replicas > 0:
        desired, reason = 1, f"{load.in_flight} task(s) in flight"
    return Decision(desired=desired, recommended=recommended, reason=reason, history=window)
