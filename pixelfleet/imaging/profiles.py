"""ICC profiles: turning pixels described by an embedded profile into plain sRGB."""

from __future__ import annotations

from functools import lru_cache
from io import BytesIO

from PIL import Image, ImageCms

from pixelfleet.imaging.colours import to_working_mode

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))

# What each mode becomes: grey stays grey (through RGB), CMYK becomes RGB.
_TRANSFORM_MODES = {"RGB": "RGB", "RGBA": "RGBA", "L": "RGB", "CMYK": "RGB"}


def _probe(mode: str) -> Image.Image:
    """A few hundred colours spanning the mode's range, to tell an identity transform."""
    steps = range(0, 256, 51)
    if mode == "L":
        return Image.frombytes("L", (256, 1), bytes(range(256)))
    if mode == "CMYK":
        return Image.new("CMYK", (1, 1))
    cube = bytes(channel for r in steps for g in steps for b in steps for channel in (r, g, b))
    rgb = Image.frombytes("RGB", (len(steps) ** 3, 1), cube)
    return rgb if mode == "RGB" else rgb.convert("RGBA")


def _is_identity(transform: ImageCms.ImageCmsTransform, mode: str) -> bool:
    if mode == "CMYK":
        return False
    probe = _probe(mode)
    converted = ImageCms.applyTransform(probe, transform)
    assert converted is not None
    if mode == "L":
        converted = converted.convert("L")
    pairs = zip(probe.tobytes(), converted.tobytes(), strict=True)
    return all(abs(a - b) <= 1 for a, b in pairs)


@lru_cache(maxsize=32)
def _transform_to_srgb(icc_profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The transform from the profile to sRGB; None when it changes nothing or cannot be built.

    Cached: the same camera or editor profile arrives again and again.
    """
    try:
        source = ImageCms.ImageCmsProfile(BytesIO(icc_profile))
        transform = ImageCms.buildTransform(source, _SRGB, mode, _TRANSFORM_MODES[mode])
        return None if _is_identity(transform, mode) else transform
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        # A damaged or mismatched profile: the pixels are shown as they are, as browsers do.
        return None


def to_srgb(image: Image.Image, icc_profile: bytes, *, in_place: bool = False) -> Image.Image:
    """The pixels converted from `icc_profile` to sRGB (grey stays grey, alpha is kept).

    Returns the image itself when the profile is sRGB already or unusable. With `in_place`
    the image may be overwritten (only when the caller owns it).
    """
    if image.mode not in _TRANSFORM_MODES and image.mode != "LA":
        image = to_working_mode(image)
        in_place = True
    if image.mode == "LA":
        grey = to_srgb(image.getchannel("L"), icc_profile, in_place=True)
        if grey.mode != "L":
            grey = grey.convert("L")
        grey.putalpha(image.getchannel("A"))
        return grey
    transform = _transform_to_srgb(icc_profile, image.mode)
    if transform is None:
        return image
    try:
        if in_place and image.mode in {"RGB", "RGBA"}:
            ImageCms.applyTransform(image, transform, inPlace=True)
            return image
        converted = ImageCms.applyTransform(image, transform)
    except (ImageCms.PyCMSError, ValueError):
        return image
    assert converted is not None
    return converted.convert("L") if image.mode == "L" else converted
