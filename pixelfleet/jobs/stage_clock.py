"""How long each step of a pipeline run took, read from its progress reports.

The pipeline reports a step when it starts (`decoding`, `op:<name>`, `encoding`; with variants,
`<variant>:op:<name>` and `<variant>:encoding`; an animation's `frames` as each frame is done),
so a step lasts until the next report, and the
last one until the pipeline returns. The imaging code stays free of clocks; this wraps its report
callback instead. Pure: the clock is injected (`time.perf_counter` by default).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pixelfleet.imaging.rendered import ProgressReport
from pixelfleet.imaging.spec import DEFAULT_OUTPUT

Clock = Callable[[], float]

DECODE_STEP = "decode"
"""The `operation` label of the time spent decoding the source."""
FRAMES_STEP = "frames"
"""The `operation` label of the time an animation spends on its frames (each decoded and taken
through the steps)."""


class StageClock:
    """Stamps each stage as the pipeline reports it, then passes the report on."""

    def __init__(self, forward: ProgressReport | None = None, *, clock: Clock = time.perf_counter):
        self._forward = forward
        self._clock = clock
        self._starts: list[tuple[str, float]] = []
        self._end: float | None = None

    def report(self, stage: str, percent: int) -> None:
        self._starts.append((stage, self._clock()))
        if self._forward is not None:
            self._forward(stage, percent)

    def stop(self) -> None:
        """Marks the pipeline's return, the end of its last stage. Called in the pipeline's
        thread as soon as it returns, so the wait to hand the result back is not counted."""
        self._end = self._clock()

    def stages(self) -> list[tuple[str, float]]:
        """(stage, seconds) for every stage reported, in order."""
        if self._end is None:
            raise RuntimeError("the pipeline has not returned: stop() the clock first")
        stamps = [start for _, start in self._starts] + [self._end]
        return [
            (stage, end - start)
            for (stage, start), end in zip(self._starts, stamps[1:], strict=True)
        ]


@dataclass(frozen=True)
class StepTime:
    """One timed step, as the metrics name it."""

    step: Literal["operation", "encode"]
    label: str
    """For an operation, `decode` or the operation's name; for an encode, the output format."""
    seconds: float


def step_times(stages: Iterable[tuple[str, float]], formats: Mapping[str, str]) -> list[StepTime]:
    """The stages as operations and encodes; `formats` maps each output's name (`default`
    without variants) to its format. A stage of another shape is left out."""
    steps: list[StepTime] = []
    for stage, seconds in stages:
        named = _step_of(stage, formats)
        if named is not None:
            steps.append(StepTime(named[0], named[1], seconds))
    return steps


def _step_of(
    stage: str, formats: Mapping[str, str]
) -> tuple[Literal["operation", "encode"], str] | None:
    # Variant names cannot hold a colon and no operation is called `encoding`, so the parts
    # say which shape a stage has.
    parts = stage.split(":")
    if parts == ["decoding"]:
        return "operation", DECODE_STEP
    if parts == ["frames"]:
        return "operation", FRAMES_STEP
    if parts[-1] == "encoding" and len(parts) <= 2:
        output = parts[0] if len(parts) == 2 else DEFAULT_OUTPUT
        output_format = formats.get(output)
        return None if output_format is None else ("encode", output_format)
    if len(parts) in (2, 3) and parts[-2] == "op" and parts[-1]:
        return "operation", parts[-1]
    return None
