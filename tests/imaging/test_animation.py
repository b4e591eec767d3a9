"""Animated GIF and WebP sources keep their animation in GIF and WebP outputs: every frame
through every step, with the frames' timing and loop. Real animations from other projects'
test data (see real_images/SOURCES.md)."""

import io

import numpy as np
import pytest
from PIL import Image
from real_images import real_image
from sample_images import encoded, scene
from similarity import ssim

from pixelfleet.imaging.codecs import sniff
from pixelfleet.imaging.errors import PipelineInvalid, TooManyPixels
from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.operations import watermark
from pixelfleet.imaging.plan import prepare
from pixelfleet.imaging.runner import run_pipeline
from pixelfleet.imaging.spec import parse_pipeline
from pixelfleet.jobs.service import price_of

LIMITS = ImageLimits()


def run(data: bytes, pipeline: dict[str, object]) -> dict[str, Image.Image]:
    results = run_pipeline(data, parse_pipeline(pipeline, LIMITS), LIMITS)
    return {name: Image.open(io.BytesIO(result.data)) for name, result in results.items()}


def frames(image: Image.Image) -> list[tuple[Image.Image, int]]:
    """Each frame (whole, RGBA) and its duration."""
    found = []
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        image.load()
        found.append((image.convert("RGBA"), int(image.info.get("duration", 0))))
    return found


def source_frames(name: str) -> list[tuple[Image.Image, int]]:
    return frames(Image.open(io.BytesIO(real_image(name))))


def shown_at(animation: list[tuple[Image.Image, int]], time: int) -> Image.Image:
    """The frame on screen `time` ms after the start (an encoder may merge identical frames
    into one that lasts as long as they did)."""
    start = 0
    for picture, duration in animation:
        if time < start + duration:
            return picture
        start += duration
    raise AssertionError(f"the animation ends before {time} ms")


def total(animation: list[tuple[Image.Image, int]]) -> int:
    return sum(duration for _, duration in animation)


def test_an_animated_gif_resized_stays_animated_frame_for_frame() -> None:
    source = source_frames("chi.gif")

    (result,) = run(
        real_image("chi.gif"), {"operations": [{"op": "resize", "width": 160}]}
    ).values()

    assert result.format == "GIF"
    assert result.info["loop"] == 0
    made = frames(result)
    assert total(made) == total(source) == 3100
    assert len(made) > 20  # the last nine source frames are alike: written as one
    for time in range(0, 3100, 250):
        picture = shown_at(made, time)
        assert picture.size == (160, 120)
        expected = shown_at(source, time).resize((160, 120), Image.Resampling.LANCZOS)
        assert ssim(picture.convert("RGB"), expected.convert("RGB")) > 0.75
    assert ssim(made[0][0].convert("RGB"), made[15][0].convert("RGB")) < 0.9  # it moves


def test_an_animated_webp_keeps_its_timing_and_every_step_reaches_every_frame() -> None:
    source = source_frames("iss634.webp")

    (result,) = run(
        real_image("iss634.webp"),
        {"operations": [{"op": "grayscale"}, {"op": "crop", "width": 200, "height": 100}]},
    ).values()

    assert result.format == "WEBP"
    made = frames(result)
    assert len(made) == len(source) == 42
    assert [duration for _, duration in made] == [duration for _, duration in source]
    for picture, _ in made[::3]:
        rgb = np.asarray(picture.convert("RGB"), dtype=np.int16)
        assert picture.size == (200, 100)
        assert np.abs(rgb[..., 0] - rgb[..., 2]).max() <= 8  # grey in every frame


def test_a_gif_written_as_webp_keeps_its_frames_and_transparency() -> None:
    source = source_frames("dispose_bgnd_transparency.gif")

    lossless = {"output": {"format": "webp", "lossless": True}}
    (result,) = run(real_image("dispose_bgnd_transparency.gif"), lossless).values()

    made = frames(result)
    assert result.info["loop"] == 0
    assert [duration for _, duration in made] == [2000, 200, 200, 500, 100, 500, 100, 500, 100, 200]
    for (picture, _), (original, _) in zip(made, source, strict=True):
        clear = np.asarray(original)[..., 3] == 0
        assert clear.any()
        assert (np.asarray(picture)[..., 3][clear] == 0).all()


def test_a_gif_that_plays_once_is_written_to_play_once() -> None:
    pictures = [scene(40, 30), scene(40, 30).transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    once = encoded(pictures[0], "GIF", save_all=True, append_images=pictures[1:], duration=80)

    results = run(
        once,
        {
            "variants": [
                {"name": "gif", "output": {"format": "gif"}},
                {"name": "webp", "output": {"format": "webp"}},
            ]
        },
    )

    assert results["gif"].n_frames == 2
    assert "loop" not in results["gif"].info  # no NETSCAPE extension: once
    assert results["webp"].info["loop"] == 1


def test_animated_false_and_formats_without_animation_take_the_first_frame() -> None:
    first = source_frames("chi.gif")[0][0].convert("RGB")

    results = run(
        real_image("chi.gif"),
        {
            "variants": [
                {"name": "still", "output": {"format": "gif", "animated": False}},
                {"name": "png", "output": {"format": "png"}},
                {"name": "moving", "output": {"format": "webp"}},
            ]
        },
    )

    assert getattr(results["still"], "n_frames", 1) == 1
    assert getattr(results["png"], "n_frames", 1) == 1
    assert ssim(results["png"].convert("RGB"), first) > 0.99
    assert total(frames(results["moving"])) == 3100


def test_an_animation_is_priced_by_its_frames_from_the_header() -> None:
    source = sniff(real_image("chi.gif"), LIMITS)

    def price(pipeline: dict[str, object]) -> tuple[list[int], int]:
        plan = prepare(source, parse_pipeline(pipeline, LIMITS), LIMITS)
        return [output.frames for output in plan.outputs], price_of(plan)

    resize = [{"op": "resize", "width": 100}]
    # 31 frames count as 4 outputs: the shared resize runs on each frame, as does the WebP's
    # own sharpen and encoding; the JPEG poster is the first frame's, once.
    assert price(
        {
            "operations": resize,
            "variants": [
                {"name": "moving", "operations": [{"op": "sharpen"}], "output": {"format": "webp"}},
                {"name": "poster", "output": {"format": "jpeg"}},
            ],
        }
    ) == ([31, 1], 1 + 4 * 1 + 4 * (1 + 1) + 0)
    assert price({"operations": resize, "output": {"format": "gif"}}) == ([31], 1 + 4 * 1)
    still = {"operations": resize, "output": {"format": "gif", "animated": False}}
    assert price(still) == ([1], 1 + 1)


def test_an_animation_over_the_animation_pixel_limit_is_refused_before_decoding() -> None:
    limits = ImageLimits(max_animation_pixels=31 * 320 * 240 - 1)
    source = sniff(real_image("chi.gif"), limits)

    with pytest.raises(PipelineInvalid) as refused:
        prepare(source, parse_pipeline({"output": {"format": "gif"}}, limits), limits)

    (error,) = refused.value.errors
    assert error.field == "pipeline.output.animated"
    assert "max_animation_pixels" in error.message
    still = parse_pipeline({"output": {"format": "gif", "animated": False}}, limits)
    assert prepare(source, still, limits).outputs[0].frames == 1


def test_a_smart_crop_of_an_animation_holds_still_where_the_first_frame_put_it() -> None:
    # A ramp along the top (red = column) over a busy patch that moves right frame by frame:
    # entropy finds the patch in the first frame, and every frame is cut there.
    rng = np.random.default_rng(5)
    pictures = []
    for left in (0, 150, 300):
        pixels = np.zeros((100, 400, 3), dtype=np.uint8)
        pixels[:10, :, 0] = np.linspace(0, 255, 400)
        pixels[20:100, left : left + 100] = rng.integers(0, 256, (80, 100, 1), dtype=np.uint8)
        pictures.append(Image.fromarray(pixels, "RGB"))
    animation = encoded(
        pictures[0], "WEBP", save_all=True, append_images=pictures[1:], lossless=True, duration=90
    )

    (result,) = run(
        animation,
        {
            "operations": [{"op": "crop", "width": 100, "height": 100, "gravity": "entropy"}],
            "output": {"format": "webp", "lossless": True},
        },
    ).values()

    made = frames(result)
    assert total(made) == 270
    ramps = {tuple(np.asarray(picture)[5, :, 0]) for picture, _ in made}
    assert len(ramps) == 1  # the same columns in every frame
    assert next(iter(ramps))[0] < 30  # the patch's place in the first frame: the left edge


def test_a_grey_animated_gif_keeps_its_transparency() -> None:
    source = source_frames("dispose_bgnd_transparency.gif")

    (result,) = run(
        real_image("dispose_bgnd_transparency.gif"),
        {"operations": [{"op": "grayscale"}], "output": {"format": "gif"}},
    ).values()

    made = frames(result)
    assert total(made) == total(source)
    for time in range(0, total(source), 200):
        clear = np.asarray(shown_at(source, time))[..., 3] == 0
        assert (np.asarray(shown_at(made, time))[..., 3][clear] == 0).all()


def gif_with_a_frame_past_its_screen(reach: int) -> bytes:
    """A 10x10 GIF of two frames, then a third whose descriptor reaches `reach` square."""
    small = Image.new("P", (10, 10), 1)
    small.putpalette([0, 0, 0, 255, 0, 0] * 128)
    two = encoded(small, "GIF", save_all=True, append_images=[small.copy()], duration=100, loop=0)
    big = Image.new("P", (reach, reach), 1)
    big.putpalette([0, 0, 0, 255, 0, 0] * 128)
    alone = encoded(big, "GIF")
    blocks = 13 + (3 << ((alone[10] & 7) + 1) if alone[10] & 0x80 else 0)
    return two[:-1] + alone[blocks:-1] + b";"


def test_a_gif_frame_reaching_past_the_screen_counts_against_the_pixel_limit() -> None:
    data = gif_with_a_frame_past_its_screen(400)
    limits = ImageLimits(max_source_pixels=100_000)

    with pytest.raises(TooManyPixels) as refused:
        sniff(data, limits)

    assert "reaches 400x400" in refused.value.detail
    assert sniff(data, LIMITS).frame_pixels == 400 * 400


def test_a_gif_frame_reaching_past_the_screen_is_cut_to_it() -> None:
    (result,) = run(gif_with_a_frame_past_its_screen(400), {"output": {"format": "gif"}}).values()

    made = frames(result)
    assert {picture.size for picture, _ in made} == {(10, 10)}
    assert total(made) >= 200


def test_the_animation_limit_counts_the_largest_image_a_step_makes() -> None:
    # Ten 10x10 frames, each blown up to 300x300 on the way to 10x10 again: 900,000 pixels.
    pictures = [Image.new("RGB", (10, 10), (25 * i, 0, 0)) for i in range(10)]
    data = encoded(pictures[0], "GIF", save_all=True, append_images=pictures[1:], duration=50)
    limits = ImageLimits(max_animation_pixels=500_000)
    source = sniff(data, limits)
    blown_up = [
        {"op": "resize", "width": 300, "height": 300, "fit": "fill", "upscale": True},
        {"op": "resize", "width": 10},
    ]

    with pytest.raises(PipelineInvalid) as refused:
        prepare(source, parse_pipeline({"operations": blown_up}, limits), limits)

    assert "900000 pixels" in refused.value.errors[0].message
    small = [{"op": "resize", "width": 200, "height": 200, "fit": "fill", "upscale": True}]
    twice = {
        "operations": small,
        "variants": [
            {"name": "a", "output": {"format": "gif"}},
            {"name": "b", "output": {"format": "webp"}},
        ],
    }
    with pytest.raises(PipelineInvalid) as summed:  # 400,000 pixels each, 800,000 together
        prepare(source, parse_pipeline(twice, limits), limits)
    assert summed.value.errors[0].field == "pipeline.variants.1.output.animated"


def test_a_watermark_is_drawn_once_and_laid_on_every_frame() -> None:
    pictures = [Image.new("RGB", (60, 40), (0, 40 * i, 0)) for i in range(6)]
    data = encoded(pictures[0], "WEBP", save_all=True, append_images=pictures[1:], lossless=True)
    drawn: list[tuple[int, int]] = []
    text_layer = watermark._text_layer

    def counted(canvas: tuple[int, int], params: watermark.WatermarkParams) -> object:
        drawn.append(canvas)
        return text_layer(canvas, params)

    mark = {"op": "watermark", "text": "PF", "size": 12, "position": "northwest", "margin": 0}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(watermark, "_text_layer", counted)
        (result,) = run(data, {"operations": [mark], "output": {"lossless": True}}).values()

    assert drawn == [(60, 40)]
    made = frames(result)
    assert len(made) == 6
    for (picture, _), original in zip(made, pictures, strict=True):  # the mark on every frame
        marked = np.asarray(picture.convert("RGB"))[:14, :20]
        assert not np.array_equal(marked, np.asarray(original)[:14, :20])
