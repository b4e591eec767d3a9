"""The autoscaler: a Kopf daemon per WorkerPool that, every `pollSeconds`, reads the queue's
load (Redis and the database), asks the policy for a replica count, marks idle pods as the
cheapest to delete before any scale-down (busy pods are kept), sets the Deployment's scale and
records what it saw and decided in the pool's status and in the operator's metrics."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from pixelfleet.autoscaling.policy import PoolPolicy, Recommendation, desired_replicas
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.jobs.turns import TurnRepository
from pixelfleet.operator.cluster import WorkerPools
from pixelfleet.operator.imagejobs import operator_state
from pixelfleet.operator.resources import GROUP, VERSION, WORKERPOOL_PLURAL, WorkerPoolSpec
from pixelfleet.operator.state import OperatorState
from pixelfleet.operator.telemetry import (
    SCALE,
    WORKERPOOLS,
    forget_pool,
    handler_run,
    record_evaluation,
)
from pixelfleet.worker.names import CELERY_WORKER_PREFIX, host_of
from pixelfleet.worker.queue_backlog import queue_load

log = logging.getLogger(__name__)

IDLE_POD_COST = 0
BUSY_POD_COST = 1000  # per task the pod runs: a scale-down takes idle pods first


class InvalidWorkerPool(Exception):
    pass


def pool_spec(body: kopf.Body) -> WorkerPoolSpec:
    try:
        return WorkerPoolSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as exc:
        problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidWorkerPool(f"Invalid WorkerPool spec: {problem}") from None


def policy_of(spec: WorkerPoolSpec) -> PoolPolicy:
    return PoolPolicy(
        min_replicas=spec.min_replicas,
        max_replicas=spec.max_replicas,
        target_tasks_per_replica=spec.target_tasks_per_replica,
        activation_tasks=spec.activation_tasks,
        scale_down_stabilization_seconds=spec.scale_down_stabilization_seconds,
    )


async def prefer_idle_pods(
    pools: WorkerPools, pods: list[tuple[str, str | None]], busy: Counter[str]
) -> None:
    """Gives every pod a deletion cost from the tasks it runs (idle pods the lowest), so the
    ReplicaSet removes idle pods first when the Deployment shrinks."""
    for pod, annotated in pods:
        cost = BUSY_POD_COST * busy.get(pod, 0) if busy.get(pod) else IDLE_POD_COST
        if annotated != str(cost):
            await pools.set_deletion_cost(pod, cost)


async def busy_hosts(state: OperatorState) -> Counter[str]:
    """How many tasks each worker host (pod) is running, as the database says."""
    async with state.ctx.read_sessions() as session:
        workers = await TaskRepository.from_session(session).running_per_worker(
            CELERY_WORKER_PREFIX
        )
    hosts: Counter[str] = Counter()
    for worker, count in workers.items():
        host = host_of(worker)
        if host is not None:
            hosts[host] += count
    return hosts


async def held_in(state: OperatorState, queue: str) -> int:
    """Tasks of `queue` waiting their turn in the database (fair sharing): work for the pool
    that its broker list does not show yet."""
    async with state.ctx.read_sessions() as session:
        return await TurnRepository.from_session(session).count_held(
            state.ctx.settings.stored_queue(queue)
        )


@dataclass
class PoolMemory:
    """What a pool's daemon carries from one evaluation to the next."""

    history: tuple[Recommendation, ...]
    last_scale: str | None


async def evaluate_pool(
    state: OperatorState,
    pools: WorkerPools,
    name: str,
    body: kopf.Body,
    spec: WorkerPoolSpec,
    memory: PoolMemory,
) -> None:
    """One scaling evaluation: measure the load, decide, scale, and record it all."""
    assert state.ctx.redis is not None
    busy = await busy_hosts(state)
    current, labels = await pools.replicas(spec.deployment)
    pods = await pools.pods(labels)
    running = sum(busy.get(pod, 0) for pod, _ in pods)
    load = await queue_load(state.ctx.redis, spec.queue, running, await held_in(state, spec.queue))
    decision = desired_replicas(policy_of(spec), load, current, memory.history, time.time())
    memory.history = decision.history
    record_evaluation(name, spec.queue, desired=decision.desired, current=current)
    if decision.desired < current:
        await prefer_idle_pods(pools, pods, busy)
    if decision.desired != current:
        await pools.scale(spec.deployment, decision.desired)
        memory.last_scale = datetime.now(UTC).isoformat()
        log.info(
            "pool %s: %s scaled %d -> %d (%s)",
            name,
            spec.deployment,
            current,
            decision.desired,
            decision.reason,
        )
    await pools.patch_status(
        name,
        {
            "backlog": load.backlog,
            "waiting": load.waiting,
            "reserved": load.reserved,
            "running": load.running,
            "desiredReplicas": decision.desired,
            "currentReplicas": current,
            "lastScaleTime": memory.last_scale,
            "reason": decision.reason,
            "recommendations": [{"at": r.at, "replicas": r.replicas} for r in decision.history],
            "observedGeneration": body.get("metadata", {}).get("generation"),
        },
    )


async def _say_poll_failed(pools: WorkerPools, name: str, exc: Exception) -> None:
    try:
        await pools.patch_status(name, {"reason": f"the last poll failed: {type(exc).__name__}"})
    except (ApiException, OSError):
        log.warning("pool %s: could not say so in its status", name, exc_info=True)


@kopf.daemon(GROUP, VERSION, WORKERPOOL_PLURAL, cancellation_timeout=10)
async def autoscale_pool(
    name: str,
    namespace: str | None,
    body: kopf.Body,
    memo: kopf.Memo,
    stopped: kopf.DaemonStopped,
    **_: Any,
) -> None:
    state = operator_state(memo)
    pools = WorkerPools(state.jobs.api_client, namespace or state.jobs.namespace)
    status = body.get("status") or {}
    memory = PoolMemory(
        history=tuple(
            Recommendation(float(r["at"]), int(r["replicas"]))
            for r in status.get("recommendations") or []
            if isinstance(r, dict) and "at" in r and "replicas" in r
        ),
        last_scale=status.get("lastScaleTime"),
    )
    try:
        while not stopped:
            try:
                # Each evaluation counts as one run of the `scale` handler.
                with handler_run(WORKERPOOLS, SCALE):
                    spec = pool_spec(body)
                    await evaluate_pool(state, pools, name, body, spec, memory)
            except InvalidWorkerPool as refusal:
                forget_pool(name)  # nothing measured: no stale numbers
                await pools.patch_status(name, {"reason": str(refusal)})
                await stopped.wait(60)
                continue
            except SQLAlchemyError:
                log.warning("pool %s: the database did not answer; trying again", name)
            except (ApiException, RedisError, OSError) as exc:
                # Tried again at the next poll, and said in the pool's status meanwhile.
                log.warning("pool %s: this poll failed; trying again", name, exc_info=True)
                await _say_poll_failed(pools, name, exc)
            await stopped.wait(spec.poll_seconds)
    finally:
        # The WorkerPool was deleted (or the operator is leaving): nobody updates the pool's
        # series any more, and a deleted pool's label must not stay.
        forget_pool(name)
