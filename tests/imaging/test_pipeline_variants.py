import uuid
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw
from sample_images import as_array, encoded, reopened, scene, swapped_primaries_profile
from similarity import ssim

from pixelfleet.imaging import codecs
from pixelfleet.imaging.codecs import sniff
from pixelfleet.imaging.errors import PipelineInvalid, ProcessingFailed, TooManyFrames
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.operations import OPERATIONS
from pixelfleet.imaging.plan import prepare
from pixelfleet.imaging.runner import run_pipeline
from pixelfleet.imaging.spec import Pipeline, parse_pipeline

LIMITS = ImageLimits()
LOGO = uuid.UUID("5a0e9c62-1111-4c3b-9d44-0123456789ab")


def pipeline(**raw: Any) -> Pipeline:
    return parse_pipeline(raw, LIMITS)


def three_sizes() -> Pipeline:
    return pipeline(
        operations=[{"op": "crop", "x": 0, "y": 0, "width": 120, "height": 90}],
        variants=[
            {"name": "small", "operations": [{"op": "thumbnail", "width": 40, "height": 40}]},
            {
                "name": "square",
                "operations": [{"op": "resize", "width": 50, "height": 50, "fit": "cover"}],
                "output": {"format": "webp", "quality": 95},
            },
            {"name": "same", "output": {"format": "png"}},
        ],
    )


def test_each_variant_is_made_from_the_shared_result_and_keyed_by_name_in_order() -> None:
    data = encoded(scene(160, 120), "PNG")

    results = run_pipeline(data, three_sizes(), LIMITS)

    shared = scene(160, 120).crop((0, 0, 120, 90))
    assert list(results) == ["small", "square", "same"]
    assert (results["small"].width, results["small"].height) == (40, 30)
    assert results["small"].format == "png"  # the source's format
    assert results["square"].format == "webp"
    assert (
        ssim(reopened(results["small"].data), shared.resize((40, 30), Image.Resampling.LANCZOS))
        > 0.95
    )
    square = shared.resize((67, 50), Image.Resampling.LANCZOS).crop((8, 0, 58, 50))
    assert ssim(reopened(results["square"].data), square) > 0.95
    assert np.array_equal(as_array(reopened(results["same"].data)), as_array(shared))


def test_predicted_sizes_match_every_variant() -> None:
    data = encoded(scene(160, 120), "PNG")
    piped = three_sizes()

    results = run_pipeline(data, piped, LIMITS)

    assert prepare(sniff(data, LIMITS), piped, LIMITS).sizes == {
        name: (result.width, result.height) for name, result in results.items()
    }


def test_a_plan_writes_out_each_output_format_and_what_its_price_depends_on() -> None:
    data = encoded(scene(160, 120), "PNG")
    piped = pipeline(
        operations=[{"op": "grayscale"}],
        variants=[
            {
                "name": "thumb",
                "operations": [{"op": "thumbnail", "width": 40, "height": 40}],
                "output": {"format": "webp", "max_bytes": 5000},
            },
            {"name": "full"},
        ],
    )

    plan = prepare(sniff(data, LIMITS), piped, LIMITS)

    assert plan.shared_operations == ("grayscale",)
    assert [
        (output.name, output.format, output.width, output.height, output.operations)
        for output in plan.outputs
    ] == [("thumb", "webp", 40, 30, ("thumbnail",)), ("full", "png", 160, 120, ())]
    assert [output.size_target for output in plan.outputs] == [True, False]
    assert [variant.output.format for variant in plan.pipeline.variants] == ["webp", "png"]
    assert plan.pipeline.variants[0].output.max_bytes == 5000  # the rest is kept as given
    assert piped.variants[1].output.format is None  # the pipeline given is left alone


def test_a_plan_of_a_single_output_writes_out_its_format_from_the_source() -> None:
    data = encoded(scene(64, 48), "JPEG")

    plan = prepare(sniff(data, LIMITS), pipeline(), LIMITS)

    assert plan.pipeline.output.format == "jpeg"
    assert [(output.name, output.format) for output in plan.outputs] == [("default", "jpeg")]
    assert plan.sizes == {"default": (64, 48)}


def test_the_source_is_decoded_once_and_the_shared_operations_run_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[object] = []
    original_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(1) or original_open(*a, **k))
    greyed: list[object] = []
    spec = OPERATIONS["grayscale"]
    monkeypatch.setitem(
        OPERATIONS,
        "grayscale",
        replace(spec, apply=lambda image, op: greyed.append(1) or spec.apply(image, op)),
    )
    piped = pipeline(
        operations=[{"op": "grayscale"}],
        variants=[{"name": name} for name in ("a", "b", "c", "d")],
    )

    results = run_pipeline(encoded(scene(64, 48), "PNG"), piped, LIMITS)

    assert len(results) == 4
    assert len(opened) == 1
    assert len(greyed) == 1


@pytest.mark.parametrize("marked_first", [True, False])
def test_a_variant_never_changes_what_the_others_see(marked_first: bool) -> None:
    marked = {
        "name": "marked",
        "operations": [{"op": "watermark", "text": "MARK", "size": 40, "opacity": 1}],
        "output": {"format": "png"},
    }
    plain = {"name": "plain", "output": {"format": "png"}}
    piped = pipeline(variants=[marked, plain] if marked_first else [plain, marked])

    results = run_pipeline(encoded(scene(160, 120), "PNG"), piped, LIMITS)

    assert np.array_equal(as_array(reopened(results["plain"].data)), as_array(scene(160, 120)))
    assert not np.array_equal(as_array(reopened(results["marked"].data)), as_array(scene(160, 120)))


def test_progress_runs_across_every_variant_rising_and_below_100() -> None:
    seen: list[tuple[str, int]] = []

    run_pipeline(
        encoded(scene(160, 120), "PNG"),
        three_sizes(),
        LIMITS,
        lambda stage, percent: seen.append((stage, percent)),
    )

    assert [stage for stage, _ in seen] == [
        "decoding",
        "op:crop",
        "small:op:thumbnail",
        "small:encoding",
        "square:op:resize",
        "square:encoding",
        "same:encoding",
    ]
    percents = [percent for _, percent in seen]
    assert percents == sorted(set(percents))
    assert percents[0] == 10
    assert percents[-1] < 100


def logo_png() -> bytes:
    logo = Image.new("RGBA", (60, 60), (0, 0, 0, 0))
    ImageDraw.Draw(logo).ellipse((0, 0, 59, 59), fill=(230, 30, 30, 255))
    return encoded(logo, "PNG")


def test_an_asset_watermark_uses_the_uploaded_image() -> None:
    piped = pipeline(
        operations=[
            {
                "op": "watermark",
                "asset": str(LOGO),
                "scale": 0.5,
                "opacity": 1,
                "position": "center",
            }
        ],
        output={"format": "png"},
    )

    result = run_pipeline(encoded(scene(160, 120), "PNG"), piped, LIMITS, assets={LOGO: logo_png()})

    decoded = reopened(result["default"].data).convert("RGB")
    centre = decoded.getpixel((80, 60))
    assert isinstance(centre, tuple)
    assert centre[0] > 200
    assert centre[1] < 60
    assert ssim(decoded.crop((0, 0, 30, 30)), scene(160, 120).crop((0, 0, 30, 30))) > 0.99


def test_a_missing_asset_fails_processing_before_decoding() -> None:
    piped = pipeline(operations=[{"op": "watermark", "asset": str(LOGO)}])

    with pytest.raises(ProcessingFailed, match=str(LOGO)):
        run_pipeline(encoded(scene(64, 48), "PNG"), piped, LIMITS, assets={})


def test_an_asset_that_is_not_an_image_fails_processing() -> None:
    piped = pipeline(operations=[{"op": "watermark", "asset": str(LOGO)}])

    with pytest.raises(ProcessingFailed, match="asset"):
        run_pipeline(encoded(scene(64, 48), "PNG"), piped, LIMITS, assets={LOGO: b"text"})


def test_output_options_are_checked_against_the_source_format_per_variant() -> None:
    piped = pipeline(variants=[{"name": "a"}, {"name": "b", "output": {"progressive": True}}])
    webp = encoded(scene(64, 48), "WEBP")

    with pytest.raises(PipelineInvalid) as refused:
        prepare(sniff(webp, LIMITS), piped, LIMITS)

    assert [e.field for e in refused.value.errors] == ["pipeline.variants.1.output.progressive"]
    with pytest.raises(PipelineInvalid):
        run_pipeline(webp, piped, LIMITS)
    assert list(run_pipeline(encoded(scene(64, 48), "JPEG"), piped, LIMITS)) == ["a", "b"]


def test_a_variant_over_the_output_pixel_limit_is_refused_before_decoding() -> None:
    limits = ImageLimits(max_output_pixels=10_000)
    piped = parse_pipeline(
        {
            "variants": [
                {"name": "ok", "operations": [{"op": "thumbnail", "width": 50, "height": 50}]},
                {"name": "big", "operations": [{"op": "resize", "width": 500, "upscale": True}]},
            ]
        },
        limits,
    )
    data = encoded(scene(64, 48), "PNG")

    with pytest.raises(PipelineInvalid) as predicted:
        prepare(sniff(data, LIMITS), piped, limits)
    with pytest.raises(PipelineInvalid) as ran:
        run_pipeline(data, piped, limits)

    for refused in (predicted, ran):
        [error] = refused.value.errors
        assert error.field == "pipeline.variants.1.operations.0"
        assert "(max_output_pixels)" in error.message


def test_the_operation_limit_is_checked_again_when_predicting() -> None:
    piped = pipeline(
        operations=[{"op": "flip"}] * 3,
        variants=[{"name": "a", "operations": [{"op": "flip"}] * 3}],
    )

    with pytest.raises(PipelineInvalid, match="limits") as refused:
        prepare(
            sniff(encoded(scene(8, 8), "PNG"), LIMITS), piped, ImageLimits(max_operations=5)
        )

    assert [e.field for e in refused.value.errors] == ["pipeline.variants.0.operations"]


def test_an_animation_over_the_frame_limit_is_refused_before_decoding() -> None:
    frames = [Image.new("RGB", (8, 8), (i, 0, 0)) for i in range(4)]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])

    with pytest.raises(TooManyFrames):
        run_pipeline(data, pipeline(), ImageLimits(max_frames=3))


def test_an_animated_webp_contributes_its_first_frame() -> None:
    first = Image.new("RGB", (32, 32), (255, 0, 0))
    second = Image.new("RGB", (32, 32), (0, 0, 255))
    data = encoded(first, "WEBP", save_all=True, append_images=[second], lossless=True)

    result = run_pipeline(data, pipeline(output={"format": "png"}), LIMITS)["default"]

    assert reopened(result.data).convert("RGB").getpixel((16, 16)) == (255, 0, 0)


def test_variants_may_keep_or_convert_the_colour_profile_each() -> None:
    profile = swapped_primaries_profile()
    data = encoded(scene(96, 64), "PNG", icc_profile=profile)
    piped = pipeline(
        operations=[{"op": "flip"}],
        variants=[
            {"name": "srgb", "output": {"format": "png"}},
            {"name": "kept", "output": {"format": "png", "colour_profile": "keep"}},
        ],
    )

    results = run_pipeline(data, piped, LIMITS)

    flipped = scene(96, 64).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    r, g, b = flipped.split()
    converted = reopened(results["srgb"].data)
    kept = reopened(results["kept"].data)
    assert (
        np.abs(as_array(converted).astype(int) - as_array(Image.merge("RGB", (b, g, r)))).max() <= 2
    )
    assert "icc_profile" not in converted.info
    assert np.array_equal(as_array(kept), as_array(flipped))
    assert kept.info["icc_profile"] == profile


def test_max_bytes_applies_per_variant() -> None:
    from sample_images import photo

    data = encoded(photo(400, 300), "PNG")
    piped = pipeline(
        variants=[
            {"name": "free", "output": {"format": "jpeg", "quality": 95}},
            {"name": "budget", "output": {"format": "jpeg", "quality": 95, "max_bytes": 8000}},
        ]
    )

    results = run_pipeline(data, piped, LIMITS)

    assert len(results["free"].data) > 8000
    assert len(results["budget"].data) <= 8000
    assert results["budget"].quality is not None
    assert results["budget"].quality < 95


def test_encode_is_told_what_profile_the_pixels_are_in(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[codecs.Metadata | None] = []
    original = codecs.encode_output

    def spy(image: Image.Image, spec: Any, **kwargs: Any) -> codecs.EncodedImage:
        seen.append(kwargs.get("metadata"))
        return original(image, spec, **kwargs)

    monkeypatch.setattr("pixelfleet.imaging.runner.encode_output", spy)
    data = encoded(scene(32, 24), "PNG", icc_profile=swapped_primaries_profile())

    run_pipeline(data, pipeline(output={"colour_profile": "keep"}), LIMITS)
    run_pipeline(data, pipeline(), LIMITS)

    assert seen[0] is not None
    assert seen[0].icc_profile == swapped_primaries_profile()
    assert seen[1] is not None
    assert seen[1].icc_profile is None  # already converted
