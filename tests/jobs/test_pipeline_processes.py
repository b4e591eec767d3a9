"""Pipelines run in child processes that can be stopped: a run past its time limit, cancelled,
or whose process died ends that process (its CPU is free at once), and the next run gets a new
one; a refused image is the imaging error, and the process that refused it is kept."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pixelfleet.errors import PixelFleetError
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.spec import parse_pipeline
from pixelfleet.jobs.pipeline_processes import PipelineProcesses
from pixelfleet.jobs.pipeline_runs import PipelineCrashed, PipelineJob, PipelineTimedOut
from tests.api_helpers import image_bytes, noise_png, truncated_jpeg

LIMITS = ImageLimits()
# Seconds of one core's work: an AVIF encode of noise.
SLOW = PipelineJob(
    noise_png((1600, 1200)),
    parse_pipeline(json.dumps({"output": {"format": "avif", "quality": 90}}), LIMITS),
    LIMITS,
    {},
)
QUICK = PipelineJob(
    image_bytes("PNG", (64, 48)),
    parse_pipeline(json.dumps({"operations": [{"op": "grayscale"}]}), LIMITS),
    LIMITS,
    {},
)


@pytest.fixture(scope="module")
async def processes() -> AsyncIterator[PipelineProcesses]:
    pool = PipelineProcesses(1)
    try:
        yield pool
    finally:
        await pool.close()


def _ignore(stage: str, percent: int) -> None:
    pass


def _gone(pid: int) -> bool:
    """The process has ended and been reaped (a zombie would still be listed)."""
    return not Path(f"/proc/{pid}").exists()


async def _encoding(processes: PipelineProcesses) -> tuple[asyncio.Task[object], int]:
    """Starts SLOW and returns it once it is in its long encode, with its process's id."""
    encoding = asyncio.Event()

    def report(stage: str, percent: int) -> None:
        if stage == "encoding":
            encoding.set()

    run = asyncio.create_task(processes.run(SLOW, report, time_limit=60))
    await encoding.wait()
    (pid,) = processes.pids
    return run, pid


async def test_a_run_returns_its_outputs_and_the_stages_it_went_through(
    processes: PipelineProcesses,
) -> None:
    reported: list[str] = []
    run = await processes.run(QUICK, lambda stage, _: reported.append(stage), time_limit=60)

    assert run.outputs["default"].format == "png"
    assert (run.outputs["default"].width, run.outputs["default"].height) == (64, 48)
    assert (
        [stage for stage, _ in run.stages] == reported == ["decoding", "op:grayscale", "encoding"]
    )


async def test_a_refused_image_is_the_imaging_error_and_its_process_is_kept(
    processes: PipelineProcesses,
) -> None:
    await processes.run(QUICK, _ignore, time_limit=60)
    before = processes.pids
    broken = PipelineJob(truncated_jpeg(), QUICK.pipeline, LIMITS, {})

    with pytest.raises(PixelFleetError) as refusal:
        await processes.run(broken, _ignore, time_limit=60)

    assert refusal.value.slug == "processing-failed"
    assert processes.pids == before
    await processes.run(QUICK, _ignore, time_limit=60)
    assert processes.pids == before


async def test_a_run_past_its_time_limit_ends_its_process(processes: PipelineProcesses) -> None:
    await processes.run(QUICK, _ignore, time_limit=60)  # a started process: the limit is the run's
    (pid,) = processes.pids

    with pytest.raises(PipelineTimedOut):
        await processes.run(SLOW, _ignore, time_limit=0.5)

    assert _gone(pid)
    await processes.run(QUICK, _ignore, time_limit=60)
    assert processes.pids != {pid}


async def test_a_cancelled_run_ends_its_process(processes: PipelineProcesses) -> None:
    run, pid = await _encoding(processes)

    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run

    assert _gone(pid)
    assert processes.pids == set()  # nothing starts until the next run


async def test_a_run_whose_process_dies_is_a_crash_and_the_next_run_gets_a_new_process(
    processes: PipelineProcesses,
) -> None:
    run, pid = await _encoding(processes)

    os.kill(pid, signal.SIGKILL)  # the OOM killer, say
    with pytest.raises(PipelineCrashed, match="signal 9"):
        await run

    assert _gone(pid)
    await processes.run(QUICK, _ignore, time_limit=60)
    assert processes.pids != {pid}
