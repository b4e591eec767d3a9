"""Each step of a pipeline run is timed from its progress report to the next, read with a fake
clock; the stages become the operations and encodes the metrics name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pixelfleet.imaging.codecs import EncodedImage
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.runner import run_pipeline
from pixelfleet.imaging.spec import parse_pipeline
from pixelfleet.jobs.stage_clock import StageClock, StepTime, step_times
from tests.api_helpers import image_bytes


class FakeClock:
    """Returns the given times in turn."""

    def __init__(self, *times: float) -> None:
        self._times: Iterator[float] = iter(times)

    def __call__(self) -> float:
        return next(self._times)


def test_a_stage_lasts_until_the_next_report_and_the_last_until_the_pipeline_returns() -> None:
    clock = StageClock(clock=FakeClock(10.0, 10.5, 12.0, 12.25))
    clock.report("decoding", 10)
    clock.report("op:resize", 50)
    clock.report("encoding", 90)
    clock.stop()
    assert clock.stages() == [("decoding", 0.5), ("op:resize", 1.5), ("encoding", 0.25)]


def test_reports_are_passed_on_unchanged() -> None:
    heard: list[tuple[str, int]] = []
    clock = StageClock(lambda stage, percent: heard.append((stage, percent)), clock=FakeClock(0, 1))
    clock.report("decoding", 10)
    clock.report("encoding", 90)
    assert heard == [("decoding", 10), ("encoding", 90)]


def test_the_stages_are_only_known_once_the_pipeline_returned() -> None:
    clock = StageClock(clock=FakeClock(0.0))
    clock.report("decoding", 10)
    with pytest.raises(RuntimeError):
        clock.stages()


def test_a_pipeline_that_reported_nothing_has_no_stages() -> None:
    clock = StageClock(clock=FakeClock(3.0))
    clock.stop()
    assert clock.stages() == []


def test_stages_name_the_decode_each_operation_and_each_outputs_format() -> None:
    stages = [
        ("decoding", 0.5),
        ("op:auto_orient", 0.01),
        ("op:grayscale", 0.25),
        ("thumb:op:thumbnail", 0.125),
        ("thumb:encoding", 0.0625),
        ("big:encoding", 2.0),
    ]
    assert step_times(stages, {"thumb": "webp", "big": "avif"}) == [
        StepTime("operation", "decode", 0.5),
        StepTime("operation", "auto_orient", 0.01),
        StepTime("operation", "grayscale", 0.25),
        StepTime("operation", "thumbnail", 0.125),
        StepTime("encode", "webp", 0.0625),
        StepTime("encode", "avif", 2.0),
    ]


def test_an_animation_s_frames_are_one_step() -> None:
    stages = [("decoding", 0.01), ("frames", 0.2), ("frames", 0.2), ("encoding", 0.1)]

    assert step_times(stages, {"default": "gif"}) == [
        StepTime("operation", "decode", 0.01),
        StepTime("operation", "frames", 0.2),
        StepTime("operation", "frames", 0.2),
        StepTime("encode", "gif", 0.1),
    ]


def test_the_single_outputs_encode_takes_the_default_outputs_format() -> None:
    assert step_times([("encoding", 1.0)], {"default": "png"}) == [StepTime("encode", "png", 1.0)]


def test_a_variant_named_like_a_stage_word_is_still_read_as_a_variant() -> None:
    formats = {"op": "jpeg", "decoding": "png"}
    assert step_times(
        [("op:encoding", 1.0), ("decoding:op:flip", 2.0), ("decoding:encoding", 3.0)], formats
    ) == [
        StepTime("encode", "jpeg", 1.0),
        StepTime("operation", "flip", 2.0),
        StepTime("encode", "png", 3.0),
    ]


def test_stages_of_an_unknown_shape_or_output_are_left_out() -> None:
    stages = [("starting", 1.0), ("a:b:c:d", 1.0), ("op:", 1.0), ("ghost:encoding", 1.0)]
    assert step_times(stages, {"default": "png"}) == []


def test_a_real_pipeline_run_is_timed_step_by_step() -> None:
    limits = ImageLimits()
    pipeline = parse_pipeline(
        '{"operations": [{"op": "grayscale"}], "variants": ['
        '{"name": "small", "operations": [{"op": "resize", "width": 64}],'
        ' "output": {"format": "webp"}},'
        '{"name": "same", "output": {"format": "png"}}]}',
        limits,
    )
    ticks = iter(range(100))
    clock = StageClock(clock=lambda: float(next(ticks)))
    encoded: dict[str, EncodedImage] = run_pipeline(
        image_bytes("JPEG", (320, 240)), pipeline, limits, clock.report
    )
    clock.stop()
    formats = {name: image.format for name, image in encoded.items()}
    assert step_times(clock.stages(), formats) == [
        StepTime("operation", "decode", 1.0),
        StepTime("operation", "grayscale", 1.0),
        StepTime("operation", "resize", 1.0),
        StepTime("encode", "webp", 1.0),
        StepTime("encode", "png", 1.0),
    ]
