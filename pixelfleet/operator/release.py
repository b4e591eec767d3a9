"""Letting go of ImageJobs when PixelFleet is uninstalled (the chart's pre-delete hook runs
`pixelfleet release-imagejobs`): no ImageJob may be left waiting on the operator's finalizer,
or deleting it (or its namespace) later would hang for good.

1. The ImageJobs PixelFleet made (`task-<id>`) are deleted while the operator still runs, so
   their unfinished tasks are cancelled and refunded as any deletion is (for `wait_seconds` at
   most).
2. The operator is scaled to zero and awaited, so that it cannot put its finalizer back.
3. The finalizer is taken off whatever is left: jobs applied by hand (they stay, and a
   PixelFleet installed again takes them up), and made ones the operator did not get to."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pixelfleet.operator.cluster import ImageJobs, WorkerPools
from pixelfleet.operator.resources import FINALIZER, MANAGED_BY_LABEL, MANAGED_BY_PIXELFLEET

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5


@dataclass
class Released:
    deleted: int = 0
    """ImageJobs PixelFleet made, deleted."""
    unfinalized: int = 0
    """ImageJobs whose finalizer was taken off here (the operator was not there to)."""


def _made_by_pixelfleet(job: dict[str, Any]) -> bool:
    labels = job.get("metadata", {}).get("labels") or {}
    return bool(labels.get(MANAGED_BY_LABEL) == MANAGED_BY_PIXELFLEET)


def _finalizers(job: dict[str, Any]) -> list[str]:
    return list(job.get("metadata", {}).get("finalizers") or [])


async def _until(done: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not await done():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)
    return True


async def release_imagejobs(
    jobs: ImageJobs,
    namespaces: Sequence[str],
    *,
    operator: tuple[WorkerPools, str] | None,
    wait_seconds: float,
) -> Released:
    """`operator`: the operator's Deployment (its namespace's client and its name), stopped
    before the finalizers are taken off (None: it is not running)."""
    released = Released()
    for namespace in namespaces:
        for job in await jobs.listed(namespace):
            name = str(job["metadata"]["name"])
            if _made_by_pixelfleet(job) and await jobs.delete(name, namespace):
                released.deleted += 1

    async def made_ones_gone() -> bool:
        for namespace in namespaces:
            if any(_made_by_pixelfleet(job) for job in await jobs.listed(namespace)):
                return False
        return True

    if not await _until(made_ones_gone, wait_seconds):
        log.warning("the operator did not let go of every ImageJob within %gs", wait_seconds)
    if operator is not None:
        await _stop(*operator, wait_seconds)
    for namespace in namespaces:
        for job in await jobs.listed(namespace):
            finalizers = _finalizers(job)
            if FINALIZER not in finalizers:
                continue
            rest = [f for f in finalizers if f != FINALIZER]
            if await jobs.set_finalizers(str(job["metadata"]["name"]), rest, namespace):
                released.unfinalized += 1
    return released


async def _stop(pools: WorkerPools, deployment: str, wait_seconds: float) -> None:
    _replicas, labels = await pools.replicas(deployment)
    await pools.scale(deployment, 0)

    async def stopped() -> bool:
        return not await pools.pods(labels, stopping=True)

    if not await _until(stopped, wait_seconds):
        log.warning("the operator's pods are still stopping after %gs", wait_seconds)
