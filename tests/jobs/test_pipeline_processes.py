"""Pipelines run in child processes that can be stopped: a run past its time limit, cancelled,
or whose process died ends that process (its CPU is free at once), and the next run gets a new
one; a refused image is the imaging error, and the process that refused it is kept. A process
gives the memory of a large image back once its run is over."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from pixelfleet.errors import PixelFleetError
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.spec import parse_pipeline
from pixelfleet.jobs.pipeline_processes import CHILD_ALLOCATOR_ENV, PipelineProcesses
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
    stages = [stage for stage, _ in run.stages]
    assert stages == ["decoding", "op:grayscale", "encoding"]
    # The first stage is reported at once; the next ones of a run this short come in its outcome.
    assert reported[0] == "decoding"
    assert [stage for stage in stages if stage in reported] == reported


async def test_a_long_stage_is_reported_while_it_runs(processes: PipelineProcesses) -> None:
    reported: list[str] = []
    encoding = asyncio.Event()

    def report(stage: str, percent: int) -> None:
        reported.append(stage)
        if stage == "encoding":
            encoding.set()

    run = asyncio.create_task(processes.run(SLOW, report, time_limit=60))
    await encoding.wait()  # it came before the run ended, though the decode before it was short

    assert not run.done()
    await run
    assert reported[0] == "decoding"
    assert reported[-1] == "encoding"


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


def _large_jpeg(size: tuple[int, int]) -> bytes:
    """A detailed photo-sized JPEG (a gradient under noise): its decode takes 4 bytes a pixel."""
    shade = Image.linear_gradient("L").resize(size)
    grain = Image.effect_noise(size, 30)
    image = Image.merge("RGB", (shade, grain, shade.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


async def test_a_process_gives_back_a_large_images_memory_after_its_run(
    processes: PipelineProcesses,
) -> None:
    # 24 MP: its decode alone is 96 MB, its full-size re-encode holds more than twice that.
    large = PipelineJob(
        _large_jpeg((6000, 4000)),
        parse_pipeline(json.dumps({"output": {"format": "jpeg", "quality": 80}}), LIMITS),
        LIMITS,
        {},
    )
    await processes.run(QUICK, _ignore, time_limit=60)
    (pid,) = processes.pids
    before = _resident_mb(pid)

    for _ in range(2):  # a second run would reuse whatever the first one kept
        run = await processes.run(large, _ignore, time_limit=120)
        assert (run.outputs["default"].width, run.outputs["default"].height) == (6000, 4000)
        del run

    assert processes.pids == {pid}
    assert _resident_mb(pid) - before < 50


def _environment(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode().split("=", 1) for entry in entries if b"=" in entry)


async def test_a_process_allocates_with_few_arenas_and_returns_large_blocks(
    processes: PipelineProcesses,
) -> None:
    await processes.run(QUICK, _ignore, time_limit=60)
    (pid,) = processes.pids

    settings = _environment(pid)

    assert settings["MALLOC_ARENA_MAX"] == "2"
    assert settings["MALLOC_MMAP_THRESHOLD_"] == str(1024 * 1024)
    assert settings["PILLOW_BLOCKS_MAX"] == "0"
    assert {name: settings[name] for name in CHILD_ALLOCATOR_ENV} == CHILD_ALLOCATOR_ENV


async def test_a_process_that_stays_large_after_its_run_is_replaced() -> None:
    # No process is that small: each is replaced after its run.
    pool = PipelineProcesses(1, keep_below_bytes=1024 * 1024)
    try:
        first = await pool.run(QUICK, _ignore, time_limit=60)
        assert first.outputs["default"].format == "png"
        assert pool.pids == set()  # ended, not kept
        await pool.run(QUICK, _ignore, time_limit=60)
    finally:
        await pool.close()
