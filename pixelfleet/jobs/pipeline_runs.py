"""The pipeline runner port: what a run takes (`PipelineJob`) and gives (`PipelineRun`), how it
fails, and the `PipelineRunner` a worker's context holds (its adapter runs each pipeline in a
child process: `pixelfleet/jobs/pipeline_processes.py`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pixelfleet.imaging.codecs import EncodedImage
    from pixelfleet.imaging.limits import ImageLimits
    from pixelfleet.imaging.rendered import ProgressReport
    from pixelfleet.imaging.spec import Pipeline


@dataclass(frozen=True)
class PipelineJob:
    """One run: the source (its bytes, or the local file that holds them, which the run reads
    itself), the pipeline, the limits, the watermark assets' bytes."""

    source: bytes | Path
    pipeline: Pipeline
    limits: ImageLimits
    assets: Mapping[uuid.UUID, bytes]


@dataclass(frozen=True)
class PipelineRun:
    """A finished run: the encoded outputs by name, and how long each stage took."""

    outputs: dict[str, EncodedImage]
    stages: list[tuple[str, float]]


class PipelineCrashed(Exception):
    """The run failed unexpectedly (a bug, or its process died), not on a refused image."""


class PipelineTimedOut(Exception):
    """The run passed its time limit, and its process was ended."""


class PipelineRunner(Protocol):
    def warm(self) -> None:
        """Gets ready for a run now, so the first one does not wait."""
        ...

    async def run(
        self, job: PipelineJob, report: ProgressReport, *, time_limit: float
    ) -> PipelineRun: ...

    async def close(self) -> None: ...
