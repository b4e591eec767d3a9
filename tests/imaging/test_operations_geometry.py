import numpy as np
import pytest
from PIL import Image
from sample_images import as_array, encoded, reopened, scene
from similarity import ssim

from pixelfleet.imaging.errors import ProcessingFailed
from pixelfleet.imaging.operations import auto_orient, crop, flip, grayscale, rotate
from pixelfleet.imaging.operations.auto_orient import AutoOrientParams
from pixelfleet.imaging.operations.crop import CropParams, Gravity
from pixelfleet.imaging.operations.flip import FlipParams
from pixelfleet.imaging.operations.grayscale import GrayscaleParams
from pixelfleet.imaging.operations.rotate import RotateParams


def test_crop_with_a_box_keeps_exactly_those_pixels() -> None:
    source = scene(160, 120)

    result = crop.apply(source, CropParams(x=10, y=20, width=50, height=40))

    assert result.size == (50, 40)
    assert np.array_equal(as_array(result), as_array(source)[20:60, 10:60])


@pytest.mark.parametrize(
    ("gravity", "rows", "cols"),
    [
        ("center", slice(40, 80), slice(55, 105)),
        ("north", slice(0, 40), slice(55, 105)),
        ("south", slice(80, 120), slice(55, 105)),
        ("east", slice(40, 80), slice(110, 160)),
        ("west", slice(40, 80), slice(0, 50)),
        ("northeast", slice(0, 40), slice(110, 160)),
        ("northwest", slice(0, 40), slice(0, 50)),
        ("southeast", slice(80, 120), slice(110, 160)),
        ("southwest", slice(80, 120), slice(0, 50)),
    ],
)
def test_crop_with_a_gravity_anchors_the_rectangle(
    gravity: Gravity, rows: slice, cols: slice
) -> None:
    source = scene(160, 120)

    result = crop.apply(source, CropParams(width=50, height=40, gravity=gravity))

    assert np.array_equal(as_array(result), as_array(source)[rows, cols])


def test_crop_without_position_or_gravity_is_centred() -> None:
    source = scene(160, 120)

    result = crop.apply(source, CropParams(width=50, height=40))

    assert np.array_equal(as_array(result), as_array(source)[40:80, 55:105])


@pytest.mark.parametrize(
    "params",
    [
        CropParams(x=150, y=0, width=20, height=20),
        CropParams(x=0, y=110, width=20, height=20),
        CropParams(width=200, height=20),
        CropParams(width=20, height=121, gravity="north"),
    ],
)
def test_a_crop_outside_the_image_fails_at_apply_time(params: CropParams) -> None:
    with pytest.raises(ProcessingFailed) as failed:
        crop.apply(scene(160, 120), params)

    assert failed.value.status == 422


def test_crop_params_refuse_half_a_position_or_a_position_and_a_gravity() -> None:
    with pytest.raises(ValueError, match="together"):
        CropParams(x=1, width=5, height=5)
    with pytest.raises(ValueError, match="not both"):
        CropParams(x=1, y=1, width=5, height=5, gravity="north")


@pytest.mark.parametrize(("angle", "turns"), [(90, 1), (180, 2), (270, 3), (-90, 3), (450, 1)])
def test_rotate_by_quarter_turns_moves_pixels_exactly(angle: float, turns: int) -> None:
    source = scene(64, 48)

    result = rotate.apply(source, RotateParams(angle=angle))

    assert np.array_equal(as_array(result), np.rot90(as_array(source), turns))


def test_rotate_by_zero_changes_nothing() -> None:
    source = scene(64, 48)

    assert np.array_equal(as_array(rotate.apply(source, RotateParams(angle=360))), as_array(source))


def test_rotate_by_any_angle_expands_the_canvas_and_fills_corners_white() -> None:
    source = scene(100, 60)

    result = rotate.apply(source, RotateParams(angle=30))

    assert result.size == rotate.output_size(source.size, RotateParams(angle=30))
    assert abs(result.width - (100 * 0.866 + 60 * 0.5)) <= 2
    assert abs(result.height - (100 * 0.5 + 60 * 0.866)) <= 2
    assert result.getpixel((0, 0)) == (255, 255, 255)
    back = result.rotate(-30, Image.Resampling.BICUBIC)
    left = (back.width - 100) // 2
    top = (back.height - 60) // 2
    assert (
        ssim(back.crop((left + 10, top + 10, left + 90, top + 50)), source.crop((10, 10, 90, 50)))
        > 0.8
    )


def test_rotate_fills_corners_transparent_when_the_image_has_alpha() -> None:
    result = rotate.apply(scene(100, 60, alpha=True), RotateParams(angle=45))

    assert result.mode == "RGBA"
    assert result.getpixel((0, 0)) == (0, 0, 0, 0)


def test_rotate_uses_the_given_background() -> None:
    result = rotate.apply(scene(100, 60), RotateParams(angle=10, background="#00ff00"))

    assert result.getpixel((0, 0)) == (0, 255, 0)


@pytest.mark.parametrize("angle", [1, 10.5, 30, 45, 89.9, 135, 200, 333.3])
def test_rotate_output_size_predicts_the_applied_size(angle: float) -> None:
    source = scene(97, 41)

    assert rotate.apply(source, RotateParams(angle=angle)).size == rotate.output_size(
        source.size, RotateParams(angle=angle)
    )


def test_flip_defaults_to_horizontal_mirroring() -> None:
    source = scene(64, 48)

    result = flip.apply(source, FlipParams())

    assert np.array_equal(as_array(result), np.fliplr(as_array(source)))


def test_flip_vertical_mirrors_top_to_bottom() -> None:
    source = scene(64, 48)

    result = flip.apply(source, FlipParams(direction="vertical"))

    assert np.array_equal(as_array(result), np.flipud(as_array(source)))


def test_grayscale_keeps_luminance() -> None:
    source = scene(64, 48)

    result = grayscale.apply(source, GrayscaleParams())

    rgb = as_array(source).astype(np.float64)
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    assert result.mode == "L"
    assert np.abs(as_array(result).astype(np.float64) - luma).max() <= 1.0


def test_grayscale_keeps_transparency() -> None:
    source = scene(64, 48, alpha=True)

    result = grayscale.apply(source, GrayscaleParams())

    assert result.mode == "LA"
    assert np.array_equal(as_array(result)[..., 1], as_array(source)[..., 3])


# How a camera stores an upright picture for each EXIF orientation.
STORED_AS = {
    1: lambda a: a,
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    4: np.flipud,
    5: lambda a: np.transpose(a, (1, 0, 2)),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: np.rot90(np.transpose(a, (1, 0, 2)), 2),
    8: lambda a: np.rot90(a, 3),
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_auto_orient_turns_each_exif_orientation_upright(orientation: int) -> None:
    upright = scene(64, 48)
    stored = Image.fromarray(np.ascontiguousarray(STORED_AS[orientation](as_array(upright))))
    exif = Image.Exif()
    exif[0x0112] = orientation
    tagged = reopened(encoded(stored, "PNG", exif=exif.tobytes()))

    result = auto_orient.apply(tagged, AutoOrientParams())

    assert np.array_equal(as_array(result.convert("RGB")), as_array(upright))
    assert result.getexif().get(0x0112, 1) == 1


def test_auto_orient_leaves_an_image_without_exif_alone() -> None:
    source = scene(64, 48)

    assert auto_orient.apply(source, AutoOrientParams()) is source
