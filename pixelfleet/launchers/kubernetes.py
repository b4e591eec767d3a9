"""Hands tasks to the cluster as ImageJobs (`task-<uuid>`, create-or-get); the operator sends
them on to the Celery workers."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from pixelfleet.imaging.source_formats import SOURCE_CONTENT_TYPES, SourceFormat
from pixelfleet.launchers import DispatchFailed
from pixelfleet.launchers.celery import CeleryLauncher
from pixelfleet.observability import log_context
from pixelfleet.operator.cluster import ImageJobs
from pixelfleet.operator.resources import (
    ImageJobSpec,
    ImageSource,
    imagejob_manifest,
    imagejob_name,
)
from pixelfleet.sources.schemas import SourceKind

if TYPE_CHECKING:
    from pixelfleet.models import Task

log = logging.getLogger(__name__)


def pipeline_summary(pipeline: dict[str, Any]) -> str:
    """A pipeline in brief for `kubectl get imagejobs`: 'thumbnail,grayscale→webp'."""
    operations = [
        str(op.get("op")) for op in pipeline.get("operations", []) if isinstance(op, dict)
    ]
    variants = pipeline.get("variants") or []
    outputs = [v.get("output") for v in variants] if variants else [pipeline.get("output")]
    formats = [str(o.get("format")) for o in outputs if isinstance(o, dict) and o.get("format")]
    return f"{','.join(operations) or 'copy'}→{'+'.join(formats) or 'same'}"[:128]


class KubernetesLauncher:
    """`mirrors`: whether this process makes the ImageJobs of the API's tasks (the API does);
    the operator's does not (it has no grant to: a task it hands out, in its turn, has its
    ImageJob already, made when it was submitted, so it only sends it)."""

    def __init__(
        self,
        jobs: ImageJobs,
        celery: CeleryLauncher,
        ttl_seconds: int | None,
        *,
        mirrors: bool = True,
    ) -> None:
        self.jobs = jobs
        self.celery = celery
        self.ttl_seconds = ttl_seconds
        self.mirrors = mirrors

    def spec_of(self, task: Task) -> ImageJobSpec:
        return ImageJobSpec(
            task_id=str(task.id),
            user_id=str(task.user_id),
            source=ImageSource(
                key=task.source_key,
                content_type=SOURCE_CONTENT_TYPES.get(
                    cast(SourceFormat, task.source_format), "application/octet-stream"
                ),
                bytes=task.source_bytes,
                width=task.source_width,
                height=task.source_height,
                kind=cast(SourceKind, task.source_kind),
                url=task.source_ref if task.source_kind == "url" else None,
            ),
            pipeline=task.pipeline,
            ops=pipeline_summary(task.pipeline),
            queue=task.queue or self.celery.queue,
            priority=task.priority or 0,  # unset until the row is written
            ttl_seconds_after_finished=self.ttl_seconds,
        )

    async def _mirror(self, task: Task) -> bool:
        """Creates the task's ImageJob; False when it exists already."""
        manifest = imagejob_manifest(
            self.spec_of(task),
            self.jobs.namespace,
            request_id=log_context.current().get("request_id"),
        )
        try:
            return await self.jobs.create(manifest)
        except (ApiException, HTTPError, OSError) as exc:  # the cluster said no, or is away
            raise DispatchFailed(f"could not create the ImageJob of task {task.id}: {exc}") from exc

    async def held(self, task: Task) -> None:
        """Its ImageJob shows it Queued while it waits its turn (the operator sends a task only
        once it is handed out)."""
        if not self._mirrors(task):
            return
        try:
            await self._mirror(task)
        except DispatchFailed:
            log.warning("task %s waits its turn without its ImageJob yet", task.id, exc_info=True)

    def _mirrors(self, task: Task) -> bool:
        """Whether this launcher makes the task's ImageJob: not for one asked for by an
        ImageJob applied by hand (that job is its mirror already), nor in the operator, which
        hands out tasks whose ImageJobs were made at their submission."""
        return task.resource_name is None and self.mirrors

    async def dispatch(self, task: Task) -> None:
        if not self._mirrors(task):
            await self.celery.dispatch(task)
            return
        created = await self._mirror(task)
        if not created:
            # A re-dispatch: the ImageJob was made long ago and its task is still queued, so the
            # operator's send was lost (or never came): send it from here (a second send of a
            # task is harmless: only one worker can claim it).
            log.info("task %s: its ImageJob exists; sending the task to the workers", task.id)
            await self.celery.dispatch(task)

    async def requeued(self, task: Task) -> None:
        await self.celery.requeued(task)

    async def withdrawn(self, task: Task) -> None:
        await self.celery.withdrawn(task)

    async def dropped(self, task: Task) -> None:
        await self.celery.dropped(task)

    async def erased(self, task_ids: Sequence[uuid.UUID]) -> None:
        """Deletes their ImageJobs: with its task gone, a job would stay for good (the resync
        that deletes finished jobs past their TTL reads the task). The operator's deletion
        handler finds no task to cancel and lets the job go."""
        for task_id in task_ids:
            name = imagejob_name(str(task_id))
            try:
                await self.jobs.delete(name)  # one already gone is no matter
            except (ApiException, HTTPError, OSError):
                log.warning("could not delete %s (its task was erased)", name, exc_info=True)

    async def close(self) -> None:
        await self.celery.close()
        self.jobs.api_client.close()  # type: ignore[no-untyped-call]
