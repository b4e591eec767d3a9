import numpy as np
import pytest
from PIL import Image, ImageDraw
from sample_images import as_array, photo
from similarity import ssim

from pixelfleet.imaging.errors import ProcessingFailed
from pixelfleet.imaging.operations import crop
from pixelfleet.imaging.operations.crop import CropParams

FLAT = (118, 122, 128)


def left_edge_of(result: Image.Image, source: Image.Image) -> int:
    """Where in the (wide) source the crop was cut from: the column that matches exactly."""
    haystack, needle = as_array(source), as_array(result)
    width = needle.shape[1]
    for left in range(haystack.shape[1] - width + 1):
        if np.array_equal(haystack[:, left : left + width], needle):
            return left
    raise AssertionError("the crop is not a part of the source")


def flat_with(detail: Image.Image, at: int, size: tuple[int, int] = (900, 300)) -> Image.Image:
    canvas = Image.new("RGB", size, FLAT)
    canvas.paste(detail, (at, 0))
    return canvas


def busy_patch(size: int, seed: int = 3) -> Image.Image:
    """Blocks of random grey levels: a histogram spread over every value."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (size // 10, size // 10), dtype=np.uint8)
    return Image.fromarray(np.kron(blocks, np.ones((10, 10), dtype=np.uint8)), "L").convert("RGB")


@pytest.mark.parametrize("at", [0, 250, 600])
def test_entropy_crop_keeps_the_busiest_part(at: int) -> None:
    source = flat_with(busy_patch(300), at)

    result = crop.apply(source, CropParams(width=300, height=300, gravity="entropy"))

    assert result.size == (300, 300)
    assert abs(left_edge_of(result, source) - at) <= 12


def skin_face(size: int) -> Image.Image:
    """A skin-toned oval with darker features, on a transparent-free flat ground."""
    image = Image.new("RGB", (size, size), FLAT)
    draw = ImageDraw.Draw(image)
    draw.ellipse((size * 0.2, size * 0.1, size * 0.8, size * 0.9), fill=(224, 172, 140))
    draw.ellipse((size * 0.33, size * 0.35, size * 0.43, size * 0.42), fill=(60, 40, 30))
    draw.ellipse((size * 0.57, size * 0.35, size * 0.67, size * 0.42), fill=(60, 40, 30))
    draw.line((size * 0.4, size * 0.7, size * 0.6, size * 0.7), fill=(150, 60, 60), width=4)
    return image


@pytest.mark.parametrize("at", [0, 300, 600])
def test_attention_crop_finds_a_face_on_a_plain_background(at: int) -> None:
    source = flat_with(skin_face(300), at)

    result = crop.apply(source, CropParams(width=300, height=300, gravity="attention"))

    assert abs(left_edge_of(result, source) - at) <= 15
    assert ssim(result, source.crop((at, 0, at + 300, 300))) > 0.8


def test_attention_prefers_vivid_colour_over_grey_texture_of_the_same_contrast() -> None:
    grey = Image.new("RGB", (200, 200), FLAT)
    ImageDraw.Draw(grey).rectangle((50, 50, 150, 150), fill=(40, 40, 40))
    vivid = Image.new("RGB", (200, 200), FLAT)
    ImageDraw.Draw(vivid).rectangle((50, 50, 150, 150), fill=(20, 200, 40))
    source = Image.new("RGB", (900, 200), FLAT)
    source.paste(grey, (50, 0))
    source.paste(vivid, (650, 0))

    result = crop.apply(source, CropParams(width=200, height=200, gravity="attention"))

    assert abs(left_edge_of(result, source) - 650) <= 15


def test_smart_crops_of_a_featureless_image_stay_centred() -> None:
    source = Image.new("RGB", (600, 200), FLAT)

    for gravity in ("entropy", "attention"):
        result = crop.apply(source, CropParams(width=200, height=200, gravity=gravity))
        assert result.size == (200, 200)
    # Every window is the same; the centred one is chosen.
    assert crop.saliency.entropy_crop(source, (200, 200)) == (200, 0)
    assert crop.saliency.attention_crop(source, (200, 200)) == (200, 0)


@pytest.mark.parametrize("gravity", ["entropy", "attention"])
def test_smart_crops_search_both_axes_of_a_large_image(gravity: str) -> None:
    source = Image.new("RGB", (3000, 2000), FLAT)
    source.paste(photo(400, 400), (2300, 1400))

    result = crop.apply(source, CropParams(width=500, height=500, gravity=gravity))  # type: ignore[arg-type]

    hits = as_array(result) != np.array(FLAT, dtype=np.uint8)
    assert hits.any(axis=-1).mean() > 0.5  # most of the window is the photo


@pytest.mark.parametrize("gravity", ["entropy", "attention"])
def test_a_smart_crop_predicts_its_size_and_refuses_what_does_not_fit(gravity: str) -> None:
    params = CropParams(width=50, height=60, gravity=gravity)  # type: ignore[arg-type]

    assert crop.output_size((100, 100), params) == (50, 60)
    with pytest.raises(ProcessingFailed):
        crop.apply(Image.new("RGB", (40, 100)), params)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "I;16"])
def test_smart_crops_accept_every_mode(mode: str) -> None:
    source = flat_with(skin_face(100), 200, (400, 100)).convert(mode if mode != "I;16" else "I")
    if mode == "I;16":
        source = source.convert("I;16")

    for gravity in ("entropy", "attention"):
        result = crop.apply(source, CropParams(width=100, height=100, gravity=gravity))  # type: ignore[arg-type]
        assert result.size == (100, 100)
        assert result.mode == source.mode
