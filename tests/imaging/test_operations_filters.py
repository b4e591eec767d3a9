from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image
from pydantic import ValidationError
from sample_images import as_array, scene
from similarity import ssim

from pixelfleet.imaging.operations import adjust, blur, sharpen
from pixelfleet.imaging.operations.adjust import AdjustParams
from pixelfleet.imaging.operations.blur import BlurParams
from pixelfleet.imaging.operations.sharpen import SharpenParams

Pixels = NDArray[np.float64]


def gaussian_reference(pixels: Pixels, sigma: float) -> Pixels:
    """A true (sampled) Gaussian, separable, edges repeated: no Pillow involved."""
    radius = max(1, int(np.ceil(4 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    pad = [(radius, radius), (radius, radius)] + [(0, 0)] * (pixels.ndim - 2)
    padded = np.pad(pixels, pad, mode="edge")
    rows = sum(
        w * padded[:, radius + o : padded.shape[1] - radius + o]
        for o, w in zip(offsets, kernel, strict=True)
    )
    return sum(
        w * rows[radius + o : rows.shape[0] - radius + o]
        for o, w in zip(offsets, kernel, strict=True)
    )


def image_of(pixels: Pixels, mode: str) -> Image.Image:
    return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8), mode)


def floats(image: Image.Image) -> Pixels:
    return as_array(image).astype(np.float64)


def busy_scene() -> Image.Image:
    """The scene with fine stripes across it, so blurring and sharpening show."""
    pixels = floats(scene(120, 90))
    stripes = 40 * np.sign(np.sin(np.arange(120) * 1.3))[None, :, None]
    return image_of(pixels + stripes, "RGB")


@pytest.mark.parametrize("sigma", [0.5, 1.5, 4.0, 12.0])
def test_blur_matches_a_true_gaussian(sigma: float) -> None:
    source = busy_scene()

    result = blur.apply(source, BlurParams(sigma=sigma))

    def likeness(reference_sigma: float) -> float:
        return ssim(result, image_of(gaussian_reference(floats(source), reference_sigma), "RGB"))

    assert result.size == source.size
    assert likeness(sigma) > 0.98
    # Closer to the asked strength than to a third more or less.
    assert likeness(sigma) > max(likeness(sigma * 1.33), likeness(sigma / 1.33))


def test_blur_keeps_hidden_colour_of_transparent_pixels_out_of_the_visible_ones() -> None:
    # Left half: transparent, but red underneath. Right half: opaque blue.
    pixels = np.zeros((40, 40, 4))
    pixels[:, :20] = (255, 0, 0, 0)
    pixels[:, 20:] = (0, 0, 255, 255)
    source = image_of(pixels, "RGBA")

    result = floats(blur.apply(source, BlurParams(sigma=3)))

    # Premultiplied reference: blur colour*alpha and alpha, then divide back.
    alpha = gaussian_reference(pixels[..., 3:] / 255, 3)
    colour = gaussian_reference(pixels[..., :3] * pixels[..., 3:] / 255, 3) / np.maximum(
        alpha, 1e-9
    )
    visible = alpha[..., 0] > 0.05
    assert np.abs(result[..., :3][visible] - colour[visible]).max() <= 3
    assert np.abs(result[..., 3] - alpha[..., 0] * 255).max() <= 3
    assert result[..., 0][visible].max() <= 3  # no red halo


def test_blur_sigma_is_bounded() -> None:
    for sigma in (0.29, 100.1):
        with pytest.raises(ValidationError):
            BlurParams(sigma=sigma)


@pytest.mark.parametrize(("sigma", "amount"), [(1.0, 1.0), (2.0, 0.5), (0.6, 2.5)])
def test_sharpen_is_an_unsharp_mask(sigma: float, amount: float) -> None:
    source = busy_scene()
    pixels = floats(source)

    result = sharpen.apply(source, SharpenParams(sigma=sigma, amount=amount))

    reference = pixels + amount * (pixels - gaussian_reference(pixels, sigma))
    assert ssim(result, image_of(reference, "RGB")) > 0.99
    assert ssim(result, source) < 0.95


def test_sharpen_raises_local_contrast() -> None:
    source = busy_scene()

    result = sharpen.apply(source, SharpenParams(sigma=2, amount=1.5))

    assert floats(result).std() > floats(source).std()


def test_sharpen_with_no_amount_changes_nothing() -> None:
    source = scene(64, 48)

    result = sharpen.apply(source, SharpenParams(amount=0))

    assert np.array_equal(as_array(result), as_array(source))


def test_sharpen_leaves_alpha_alone() -> None:
    source = scene(64, 48, alpha=True)

    result = sharpen.apply(source, SharpenParams(sigma=1.5, amount=2))

    assert result.mode == "RGBA"
    assert np.array_equal(as_array(result)[..., 3], as_array(source)[..., 3])


def luma(pixels: Pixels) -> Pixels:
    result: Pixels = pixels[..., 0] * 0.299 + pixels[..., 1] * 0.587 + pixels[..., 2] * 0.114
    return result


def adjust_reference(
    pixels: Pixels, brightness: float, contrast: float, saturation: float
) -> Pixels:
    """The textbook definitions, in floating point, one after the other."""
    out = np.clip(pixels * brightness, 0, 255)
    mean = luma(out).mean()
    out = np.clip(mean + (out - mean) * contrast, 0, 255)
    grey = luma(out)[..., None]
    return np.clip(grey + (out - grey) * saturation, 0, 255)


@pytest.mark.parametrize(
    "params",
    [
        {"brightness": 1.4},
        {"brightness": 0.5},
        {"contrast": 1.8},
        {"contrast": 0.3},
        {"saturation": 2.0},
        {"saturation": 0.4},
        {"brightness": 1.2, "contrast": 1.3, "saturation": 1.5},
    ],
)
def test_adjust_matches_the_textbook_definitions(params: dict[str, float]) -> None:
    source = scene(120, 90)
    settings: dict[str, Any] = {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0} | params

    result = adjust.apply(source, AdjustParams(**params))

    reference = adjust_reference(floats(source), **settings)
    assert ssim(result, image_of(reference, "RGB")) > 0.98
    assert np.abs(floats(result) - reference).mean() < 1.5


def test_adjust_with_the_defaults_changes_nothing() -> None:
    source = scene(64, 48)

    assert np.array_equal(as_array(adjust.apply(source, AdjustParams())), as_array(source))


def test_zero_saturation_is_grey_and_zero_brightness_is_black() -> None:
    source = scene(64, 48)

    grey = as_array(adjust.apply(source, AdjustParams(saturation=0))).astype(int)
    black = as_array(adjust.apply(source, AdjustParams(brightness=0)))

    assert np.abs(grey[..., 0] - grey[..., 1]).max() <= 1
    assert np.abs(grey[..., 1] - grey[..., 2]).max() <= 1
    assert black.max() == 0


def test_adjust_keeps_alpha_and_grey_modes() -> None:
    transparent = scene(64, 48, alpha=True)
    grey = scene(64, 48).convert("L")

    adjusted = adjust.apply(transparent, AdjustParams(brightness=1.5, saturation=0.5))
    grey_adjusted = adjust.apply(grey, AdjustParams(contrast=2, saturation=3))

    assert adjusted.mode == "RGBA"
    assert np.array_equal(as_array(adjusted)[..., 3], as_array(transparent)[..., 3])
    assert grey_adjusted.mode == "L"


def test_adjust_multipliers_are_bounded() -> None:
    for field in ("brightness", "contrast", "saturation"):
        with pytest.raises(ValidationError):
            AdjustParams(**{field: 4.01})
        with pytest.raises(ValidationError):
            AdjustParams(**{field: -0.1})
