from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageCms, JpegImagePlugin
from sample_images import (
    as_array,
    encoded,
    png_header_only,
    reopened,
    scene,
    swapped_primaries_profile,
)
from similarity import ssim

from pixelfleet.imaging.codecs import EncodedImage, sniff
from pixelfleet.imaging.errors import (
    ImageTooLarge,
    PipelineInvalid,
    ProcessingFailed,
    TooManyPixels,
    UnsupportedImage,
)
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.plan import prepare
from pixelfleet.imaging.runner import ProgressReport, run_pipeline
from pixelfleet.imaging.spec import Pipeline, parse_pipeline

LIMITS = ImageLimits()


def pipeline(**raw: Any) -> Pipeline:
    return parse_pipeline(raw, LIMITS)


def run_single(
    data: bytes,
    piped: Pipeline,
    limits: ImageLimits = LIMITS,
    report: ProgressReport | None = None,
) -> EncodedImage:
    """The one output of a pipeline without variants."""
    results = run_pipeline(data, piped, limits, report)
    assert list(results) == ["default"]
    return results["default"]


def camera_jpeg(upright: Image.Image, *, orientation: int = 6, **params: Any) -> bytes:
    """A JPEG stored sideways with orientation 6 (display needs a clockwise quarter turn)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PixelFleet Camera"
    stored = upright.transpose(Image.Transpose.ROTATE_90) if orientation == 6 else upright
    return encoded(stored, "JPEG", quality=95, exif=exif.tobytes(), **params)


def test_an_empty_pipeline_re_encodes_in_the_source_format() -> None:
    data = encoded(scene(64, 48), "WEBP", quality=95)

    result = run_single(data, pipeline(output={"quality": 95}), LIMITS)

    assert result.format == "webp"
    assert result.content_type == "image/webp"
    assert (result.width, result.height) == (64, 48)
    assert ssim(reopened(result.data), scene(64, 48)) > 0.95


def test_a_source_in_a_format_we_cannot_write_comes_out_as_png() -> None:
    result = run_single(encoded(scene(64, 48), "BMP"), pipeline(), LIMITS)

    assert result.format == "png"
    assert np.array_equal(as_array(reopened(result.data)), as_array(scene(64, 48)))


def test_operations_apply_in_order() -> None:
    raw = {
        "operations": [
            {"op": "crop", "x": 0, "y": 0, "width": 80, "height": 60},
            {"op": "resize", "width": 40},
            {"op": "flip"},
        ],
        "output": {"format": "png"},
    }

    result = run_single(encoded(scene(160, 120), "PNG"), pipeline(**raw), LIMITS)

    expected = scene(160, 120).crop((0, 0, 80, 60)).resize((40, 30), Image.Resampling.LANCZOS)
    expected = expected.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert (result.width, result.height) == (40, 30)
    assert ssim(reopened(result.data), expected) > 0.95


def test_exif_orientation_is_applied_by_default() -> None:
    upright = scene(96, 64)

    result = run_single(camera_jpeg(upright), pipeline(output={"format": "png"}), LIMITS)

    assert (result.width, result.height) == (96, 64)
    assert ssim(reopened(result.data), upright) > 0.95


def test_exif_orientation_is_left_alone_when_auto_orient_is_off() -> None:
    result = run_single(camera_jpeg(scene(96, 64)), pipeline(auto_orient=False), LIMITS)

    assert (result.width, result.height) == (64, 96)


def test_an_explicit_auto_orient_runs_where_it_stands_and_only_once() -> None:
    upright = scene(96, 64)
    raw = {
        "operations": [
            {"op": "flip", "direction": "vertical"},
            {"op": "auto_orient"},
            {"op": "auto_orient"},
        ],
        "output": {"format": "png"},
    }

    result = run_single(camera_jpeg(upright), pipeline(**raw), LIMITS)

    # Flipping the stored (sideways) pixels top-bottom, then turning, mirrors left-right.
    expected = upright.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert (result.width, result.height) == (96, 64)
    assert ssim(reopened(result.data), expected) > 0.95


def test_metadata_is_stripped_from_results_by_default() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = camera_jpeg(scene(96, 64), icc_profile=icc, comment=b"private")

    result = run_single(data, pipeline(operations=[{"op": "resize", "width": 48}]), LIMITS)

    decoded = reopened(result.data)
    assert "exif" not in decoded.info
    assert "icc_profile" not in decoded.info
    assert b"PixelFleet Camera" not in result.data
    assert b"private" not in result.data


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "avif"])
def test_exif_and_icc_are_kept_when_asked_with_the_orientation_already_applied(fmt: str) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = camera_jpeg(scene(96, 64), icc_profile=icc)
    raw = {"operations": [{"op": "resize", "width": 48, "height": 48, "fit": "contain"}]}
    raw["output"] = {"format": fmt, "strip_metadata": False, "colour_profile": "keep"}

    result = run_single(data, pipeline(**raw), LIMITS)

    decoded = reopened(result.data)
    exif = decoded.getexif()
    assert exif[0x010F] == "PixelFleet Camera"
    assert exif.get(0x0112, 1) == 1
    assert decoded.info["icc_profile"] == icc


def test_a_truncated_jpeg_fails_processing_rather_than_crashing() -> None:
    data = encoded(scene(160, 120), "JPEG", quality=95)
    truncated = data[: len(data) // 2]
    sniff(truncated, LIMITS)  # the header alone looks fine

    with pytest.raises(ProcessingFailed) as failed:
        run_single(truncated, pipeline(), LIMITS)

    assert failed.value.status == 422
    assert failed.value.slug == "processing-failed"


def test_a_png_with_damaged_pixel_data_fails_processing() -> None:
    data = bytearray(encoded(scene(64, 48), "PNG"))
    start = data.index(b"IDAT") + 20
    data[start : start + 40] = bytes(40)

    with pytest.raises(ProcessingFailed):
        run_single(bytes(data), pipeline(), LIMITS)


def test_run_pipeline_enforces_the_upload_limits_itself() -> None:
    with pytest.raises(UnsupportedImage):
        run_single(b"plain text", pipeline(), LIMITS)
    with pytest.raises(ImageTooLarge):
        run_single(encoded(scene(64, 48), "PNG"), pipeline(), ImageLimits(max_upload_bytes=10))
    with pytest.raises(TooManyPixels):
        run_single(png_header_only(100_000, 100_000), pipeline(), LIMITS)


def test_an_intermediate_image_over_the_output_pixel_limit_fails_before_it_is_made() -> None:
    limits = ImageLimits(max_output_pixels=10_000)
    raw = {
        "operations": [
            {"op": "resize", "width": 200, "upscale": True},
            {"op": "resize", "width": 50},
        ]
    }

    with pytest.raises(PipelineInvalid) as refused:
        run_single(encoded(scene(64, 48), "PNG"), parse_pipeline(raw, limits), limits)

    [error] = refused.value.errors
    assert error.field == "pipeline.operations.0"
    assert "200x150" in error.message
    assert "(max_output_pixels)" in error.message


def test_a_rotation_that_grows_past_the_output_pixel_limit_fails() -> None:
    limits = ImageLimits(max_output_pixels=100 * 100)
    raw = {"operations": [{"op": "rotate", "angle": 45}]}

    with pytest.raises(PipelineInvalid) as refused:
        run_single(encoded(scene(100, 100), "PNG"), parse_pipeline(raw, limits), limits)

    assert [e.field for e in refused.value.errors] == ["pipeline.operations.0"]


def test_a_crop_outside_the_image_fails_processing() -> None:
    raw = {"operations": [{"op": "crop", "x": 100, "y": 0, "width": 100, "height": 10}]}

    with pytest.raises(ProcessingFailed):
        run_single(encoded(scene(160, 120), "PNG"), pipeline(**raw), LIMITS)


def test_an_animated_gif_contributes_its_first_frame() -> None:
    first = Image.new("RGB", (32, 32), (255, 0, 0))
    second = Image.new("RGB", (32, 32), (0, 0, 255))
    data = encoded(first, "GIF", save_all=True, append_images=[second], duration=40)

    result = run_single(data, pipeline(output={"format": "png"}), LIMITS)

    assert reopened(result.data).convert("RGB").getpixel((16, 16)) == (255, 0, 0)


def test_progress_is_reported_per_stage_with_rising_percentages_below_100() -> None:
    seen: list[tuple[str, int]] = []
    raw = {"operations": [{"op": "resize", "width": 80}, {"op": "grayscale"}, {"op": "flip"}]}

    run_single(
        encoded(scene(160, 120), "PNG"), pipeline(**raw), LIMITS, lambda s, p: seen.append((s, p))
    )

    stages = [stage for stage, _ in seen]
    percents = [percent for _, percent in seen]
    assert stages == ["decoding", "op:resize", "op:grayscale", "op:flip", "encoding"]
    assert seen[0] == ("decoding", 10)
    assert seen[-1] == ("encoding", 90)
    assert all(10 < p <= 85 for p in percents[1:-1])
    assert percents == sorted(set(percents))
    assert max(percents) < 100


def test_a_jpeg_is_decoded_at_reduced_size_when_the_first_step_shrinks_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requests: list[tuple[int, int] | None] = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(
        self: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int] | None
    ) -> Any:
        requests.append(size)
        return original(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    upright = scene(320, 240).resize((1280, 960), Image.Resampling.BICUBIC)
    raw = {
        "operations": [{"op": "thumbnail", "width": 100, "height": 100}],
        "output": {"format": "png"},
    }

    result = run_single(camera_jpeg(upright), pipeline(**raw), LIMITS)

    # Stored sideways, so the request is in the stored orientation (960 wide, 1280 high):
    # the 75x100 target with a quarter of headroom.
    assert requests == [(94, 125)]
    assert (result.width, result.height) == (100, 75)
    assert ssim(reopened(result.data), scene(100, 75)) > 0.95


def test_no_reduced_decoding_when_the_first_step_does_not_shrink(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requests: list[object] = []
    monkeypatch.setattr(
        JpegImagePlugin.JpegImageFile, "draft", lambda self, mode, size: requests.append(size)
    )

    run_single(encoded(scene(160, 120), "JPEG"), pipeline(operations=[{"op": "flip"}]), LIMITS)

    assert requests == []


@pytest.mark.parametrize(
    "operations",
    [
        [],
        [{"op": "resize", "width": 50, "height": 50, "fit": "contain"}],
        [{"op": "rotate", "angle": 33}, {"op": "thumbnail", "width": 40, "height": 70}],
        [
            {"op": "crop", "width": 30, "height": 20, "gravity": "east"},
            {"op": "rotate", "angle": 90},
        ],
        [
            {"op": "resize", "height": 37, "fit": "cover"},
            {"op": "auto_orient"},
            {"op": "grayscale"},
        ],
        [
            {"op": "resize", "width": 40, "height": 40, "fit": "outside"},
            {"op": "pad", "top": 3, "left": 9, "background": "red"},
            {"op": "crop", "width": 30, "height": 30, "gravity": "attention"},
        ],
        [
            {"op": "crop", "width": 50, "height": 20, "gravity": "entropy"},
            {"op": "blur", "sigma": 1},
            {"op": "sharpen"},
            {"op": "adjust", "contrast": 1.2},
            {"op": "watermark", "text": "hello"},
            {"op": "flop"},
        ],
    ],
)
def test_predicted_output_size_matches_the_result(operations: list[dict[str, Any]]) -> None:
    data = camera_jpeg(scene(96, 64))
    piped = pipeline(operations=operations)

    result = run_single(data, piped, LIMITS)

    assert prepare(sniff(data, LIMITS), piped, LIMITS).sizes == {
        "default": (result.width, result.height)
    }


def test_predicting_refuses_a_pipeline_that_would_exceed_the_output_pixel_limit() -> None:
    data = encoded(scene(64, 48), "PNG")
    piped = pipeline(operations=[{"op": "resize", "width": 2000, "upscale": True}])

    with pytest.raises(PipelineInvalid) as refused:
        prepare(sniff(data, LIMITS), piped, ImageLimits(max_output_pixels=1_000_000))

    assert [e.field for e in refused.value.errors] == ["pipeline.operations.0"]


def test_pixels_in_another_profile_come_out_in_srgb_after_a_shrink() -> None:
    data = encoded(scene(320, 240), "JPEG", quality=95, icc_profile=swapped_primaries_profile())
    raw = {
        "operations": [{"op": "thumbnail", "width": 80, "height": 80}],
        "output": {"format": "png"},
    }

    result = run_single(data, pipeline(**raw))

    r, g, b = scene(80, 60).split()
    decoded = reopened(result.data)
    assert "icc_profile" not in decoded.info
    assert ssim(decoded, Image.merge("RGB", (b, g, r))) > 0.95


@pytest.mark.parametrize("mode", ["CMYK", "L", "P", "RGBA", "LA"])
def test_sources_of_every_mode_shrink_through_the_planned_path(mode: str) -> None:
    source = scene(320, 240, alpha=mode in {"RGBA", "LA"}).convert(mode)
    pil_format = "JPEG" if mode in {"CMYK", "L"} else "PNG"
    raw = {"operations": [{"op": "resize", "width": 40}], "output": {"format": "png"}}

    result = run_single(encoded(source, pil_format), pipeline(**raw))

    assert (result.width, result.height) == (40, 30)
    assert ssim(reopened(result.data), source.convert("RGBA").resize((40, 30))) > 0.9


def test_an_explicit_auto_orient_in_a_variant_turns_only_that_variant() -> None:
    upright = scene(96, 64)
    raw = {
        "auto_orient": False,
        "variants": [
            {"name": "as_stored", "output": {"format": "png"}},
            {"name": "upright", "operations": [{"op": "auto_orient"}], "output": {"format": "png"}},
        ],
    }

    results = run_pipeline(camera_jpeg(upright), pipeline(**raw), LIMITS)

    assert (results["as_stored"].width, results["as_stored"].height) == (64, 96)
    assert (results["upright"].width, results["upright"].height) == (96, 64)
    assert ssim(reopened(results["upright"].data), upright) > 0.95
    assert reopened(results["as_stored"].data).info.get("exif") is None
