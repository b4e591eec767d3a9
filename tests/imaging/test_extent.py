"""An upload's image alone: whatever was appended after the image's end is not kept, and the
image itself loses nothing (byte for byte where the container says where it ends; pixel for
pixel where it has to be written again)."""

import os
from io import BytesIO

import pytest
from PIL import Image
from sample_images import encoded, reopened, scene

from pixelfleet.imaging.errors import UnsupportedImage
from pixelfleet.imaging.extent import image_alone
from pixelfleet.imaging.limits import ImageLimits

LIMITS = ImageLimits()
# Random bytes, and bytes that look like the end markers the formats use.
APPENDED = os.urandom(40_000) + b"\xff\xd9IEND\x3b" + os.urandom(1000)


def _animation(pil_format: str, **params: object) -> bytes:
    mode = "P" if pil_format == "GIF" else "RGBA"
    frames = [scene(64, 48, alpha=True).convert(mode), scene(64, 48).rotate(180).convert(mode)]
    return encoded(frames[0], pil_format, save_all=True, append_images=frames[1:], **params)


def _with_orientation(image: Image.Image, pil_format: str) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(image, pil_format, exif=exif.tobytes())


KEPT_AS_THEY_ARE = {
    "baseline jpeg": encoded(scene(64, 48), "JPEG", quality=80),
    "progressive jpeg with exif": _with_orientation(scene(64, 48), "JPEG"),
    "png with alpha": encoded(scene(64, 48, alpha=True), "PNG"),
    "16-bit grey png": encoded(Image.new("I;16", (20, 10), 40_000), "PNG"),
    "animated png": _animation("PNG"),
    "animated gif": _animation("GIF"),
    "lossy webp": encoded(scene(64, 48), "WEBP"),
    "lossless webp with alpha": encoded(scene(64, 48, alpha=True), "WEBP", lossless=True),
    "animated webp": _animation("WEBP"),
}

WRITTEN_AGAIN = {
    "avif": (encoded(scene(64, 48, alpha=True), "AVIF"), "png"),
    "tiff": (_with_orientation(scene(64, 48), "TIFF"), "png"),
    "cmyk tiff": (encoded(scene(64, 48).convert("CMYK"), "TIFF"), "tiff"),
    "float tiff": (encoded(scene(64, 48).convert("F"), "TIFF"), "tiff"),
    "bmp": (encoded(scene(64, 48), "BMP"), "png"),
    "palette bmp": (encoded(scene(64, 48).convert("P"), "BMP"), "png"),
}


def _frames(data: bytes) -> list[bytes]:
    with Image.open(BytesIO(data)) as image:
        frames = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            frames.append(image.convert("RGBA").tobytes())
        return frames


@pytest.mark.parametrize("image", KEPT_AS_THEY_ARE.values(), ids=KEPT_AS_THEY_ARE.keys())
def test_bytes_after_the_end_its_container_marks_are_cut_and_the_image_kept_as_it_is(
    image: bytes,
) -> None:
    alone, info = image_alone(image + APPENDED, LIMITS)

    assert alone == image
    assert info.bytes == len(image)
    assert len(_frames(alone)) == info.frames  # animations keep every frame


@pytest.mark.parametrize("image", KEPT_AS_THEY_ARE.values(), ids=KEPT_AS_THEY_ARE.keys())
def test_an_image_with_nothing_appended_is_kept_as_it_is(image: bytes) -> None:
    assert image_alone(image, LIMITS)[0] == image


@pytest.mark.parametrize(
    ("image", "stored_format"), WRITTEN_AGAIN.values(), ids=WRITTEN_AGAIN.keys()
)
def test_formats_that_do_not_mark_their_end_are_written_again_losslessly(
    image: bytes, stored_format: str
) -> None:
    alone, info = image_alone(image + APPENDED, LIMITS)

    assert info.format == stored_format
    assert APPENDED[:1000] not in alone
    original, stored = reopened(image), reopened(alone)
    assert (stored.mode, stored.size) == (original.mode, original.size)
    assert stored.tobytes() == original.tobytes()
    assert stored.getexif().get(0x0112) == original.getexif().get(0x0112)  # orientation kept


def test_a_camera_jpeg_keeps_its_first_picture_as_a_plain_jpeg() -> None:
    first, second = scene(64, 48), scene(64, 48).rotate(180)
    mpo = encoded(first, "MPO", save_all=True, append_images=[second])
    plain = encoded(first, "JPEG")

    alone, info = image_alone(mpo + APPENDED, LIMITS)

    assert (info.format, info.frames) == ("jpeg", 1)
    assert len(alone) < len(mpo)
    with Image.open(BytesIO(alone)) as stored:
        assert stored.format == "JPEG"
        assert stored.convert("RGB").tobytes() == reopened(plain).convert("RGB").tobytes()


def test_a_png_cut_short_before_its_end_is_refused() -> None:
    whole = encoded(scene(64, 48), "PNG")
    cut = whole[: len(whole) // 2]

    with pytest.raises(UnsupportedImage):
        image_alone(cut, LIMITS)
