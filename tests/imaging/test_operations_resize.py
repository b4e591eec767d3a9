import pytest
from PIL import Image
from sample_images import scene
from similarity import ssim

from pixelfleet.imaging.operations import resize, thumbnail
from pixelfleet.imaging.operations.resize import ResizeParams
from pixelfleet.imaging.operations.thumbnail import ThumbnailParams


def test_resize_inside_keeps_aspect_ratio_and_never_upscales() -> None:
    source = scene(160, 120)

    shrunk = resize.apply(source, ResizeParams(width=80, height=80))
    kept = resize.apply(source, ResizeParams(width=400, height=400))

    assert shrunk.size == (80, 60)
    assert ssim(shrunk, scene(80, 60)) > 0.95
    assert kept.size == (160, 120)


def test_resize_inside_with_upscale_enlarges_to_the_box() -> None:
    result = resize.apply(scene(160, 120), ResizeParams(width=400, height=400, upscale=True))

    assert result.size == (400, 300)
    assert ssim(result, scene(400, 300)) > 0.95


def test_resize_with_only_a_width_derives_the_height_from_the_aspect_ratio() -> None:
    assert resize.apply(scene(160, 120), ResizeParams(width=40)).size == (40, 30)


def test_resize_with_only_a_height_derives_the_width_from_the_aspect_ratio() -> None:
    assert resize.apply(scene(160, 120), ResizeParams(height=60)).size == (80, 60)


def test_resize_cover_fills_the_exact_box_cropping_the_overflow_centred() -> None:
    result = resize.apply(scene(160, 120), ResizeParams(width=60, height=60, fit="cover"))

    assert result.size == (60, 60)
    # Scaled to 80x60, then 10 columns cut from each side.
    assert ssim(result, scene(80, 60).crop((10, 0, 70, 60))) > 0.95


def test_resize_cover_without_upscale_crops_a_small_image_but_does_not_enlarge_it() -> None:
    result = resize.apply(scene(100, 40), ResizeParams(width=200, height=200, fit="cover"))

    assert result.size == (100, 40)


def test_resize_contain_pads_to_the_exact_box_with_the_background() -> None:
    result = resize.apply(
        scene(160, 120), ResizeParams(width=100, height=100, fit="contain", background="#ff0000")
    )

    expected = Image.new("RGB", (100, 100), (255, 0, 0))
    expected.paste(scene(100, 75), (0, 12))
    assert result.size == (100, 100)
    assert result.getpixel((50, 2)) == (255, 0, 0)
    assert result.getpixel((50, 97)) == (255, 0, 0)
    assert ssim(result, expected) > 0.95


def test_resize_contain_defaults_to_a_white_background() -> None:
    result = resize.apply(scene(160, 120), ResizeParams(width=100, height=100, fit="contain"))

    assert result.getpixel((0, 0)) == (255, 255, 255)


def test_resize_contain_with_a_transparent_background_adds_alpha() -> None:
    result = resize.apply(
        scene(160, 120),
        ResizeParams(width=100, height=100, fit="contain", background="transparent"),
    )

    assert result.mode == "RGBA"
    assert result.getpixel((50, 2)) == (0, 0, 0, 0)
    pixel = result.getpixel((50, 50))
    assert isinstance(pixel, tuple)
    assert pixel[3] == 255


def test_resize_fill_stretches_to_the_exact_box() -> None:
    result = resize.apply(
        scene(160, 120), ResizeParams(width=80, height=80, fit="fill", upscale=True)
    )

    assert result.size == (80, 80)
    assert ssim(result, scene(80, 80)) > 0.95


def test_resize_fill_without_upscale_shrinks_only_the_sides_that_are_too_large() -> None:
    result = resize.apply(scene(160, 120), ResizeParams(width=80, height=200, fit="fill"))

    assert result.size == (80, 120)


def test_resize_keeps_transparency() -> None:
    result = resize.apply(scene(160, 120, alpha=True), ResizeParams(width=80))

    assert result.mode == "RGBA"
    assert ssim(result, scene(80, 60, alpha=True)) > 0.95


def test_resize_of_a_palette_image_resamples_smoothly_in_full_colour() -> None:
    palette = scene(160, 120).quantize(256)

    result = resize.apply(palette, ResizeParams(width=80))

    assert result.mode == "RGB"
    assert ssim(result, scene(80, 60)) > 0.95


@pytest.mark.parametrize(
    ("size", "params"),
    [
        ((160, 120), ResizeParams(width=80, height=80)),
        ((160, 120), ResizeParams(width=33, height=77, fit="cover")),
        ((161, 119), ResizeParams(width=50, height=50, fit="contain")),
        ((160, 120), ResizeParams(width=500, fit="fill", upscale=True)),
        ((7, 301), ResizeParams(height=13)),
    ],
)
def test_resize_output_size_predicts_the_applied_size(
    size: tuple[int, int], params: ResizeParams
) -> None:
    assert resize.apply(scene(*size), params).size == resize.output_size(size, params)


def test_thumbnail_fits_the_box_keeping_aspect_ratio() -> None:
    result = thumbnail.apply(scene(160, 120), ThumbnailParams(width=64, height=64))

    assert result.size == (64, 48)
    assert ssim(result, scene(64, 48)) > 0.95


def test_thumbnail_never_upscales() -> None:
    result = thumbnail.apply(scene(160, 120), ThumbnailParams(width=1000, height=1000))

    assert result.size == (160, 120)


@pytest.mark.parametrize(
    ("size", "box"),
    [
        ((160, 120), (64, 64)),
        ((123, 457), (50, 50)),
        ((1000, 3), (10, 100)),
        ((640, 480), (641, 10)),
    ],
)
def test_thumbnail_sizes_match_pillows_own_thumbnail(
    size: tuple[int, int], box: tuple[int, int]
) -> None:
    expected = Image.new("L", size)
    expected.thumbnail(box)

    assert (
        thumbnail.output_size(size, ThumbnailParams(width=box[0], height=box[1])) == expected.size
    )


def test_thumbnail_leaves_its_input_untouched() -> None:
    source = scene(160, 120)

    thumbnail.apply(source, ThumbnailParams(width=16, height=16))

    assert source.size == (160, 120)


def test_resize_outside_covers_the_box_without_cropping() -> None:
    params = ResizeParams(width=60, height=60, fit="outside")

    result = resize.apply(scene(160, 120), params)

    assert result.size == resize.output_size((160, 120), params) == (80, 60)
    assert ssim(result, scene(80, 60)) > 0.95


def test_resize_outside_without_upscale_leaves_a_small_image_alone() -> None:
    result = resize.apply(scene(100, 40), ResizeParams(width=200, height=200, fit="outside"))

    assert result.size == (100, 40)


def test_resize_outside_with_upscale_enlarges_until_both_sides_cover() -> None:
    result = resize.apply(
        scene(100, 40), ResizeParams(width=200, height=200, fit="outside", upscale=True)
    )

    assert result.size == (500, 200)
    assert ssim(result, scene(500, 200)) > 0.95
