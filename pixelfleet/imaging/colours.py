"""Colour strings in operation parameters, and the working modes that can show them."""

from __future__ import annotations

from typing import Annotated

from PIL import Image, ImageColor
from pydantic import AfterValidator

RGBA = tuple[int, int, int, int]

TRANSPARENT: RGBA = (0, 0, 0, 0)
WHITE: RGBA = (255, 255, 255, 255)

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


def parse_colour(value: str) -> RGBA:
    """`#rgb`, `#rrggbb`, `#rrggbbaa`, CSS names, `rgb(...)` or `transparent`, as RGBA."""
    if value.strip().lower() == "transparent":
        return TRANSPARENT
    try:
        parsed = ImageColor.getrgb(value)
    except ValueError:
        raise ValueError(f"unknown colour {value!r}") from None
    if len(parsed) == 3:
        return (parsed[0], parsed[1], parsed[2], 255)
    return (parsed[0], parsed[1], parsed[2], parsed[3])


def _checked_colour(value: str) -> str:
    parse_colour(value)
    return value


Colour = Annotated[str, AfterValidator(_checked_colour)]
"""A colour string, checked when the parameters are validated."""


def has_alpha(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or "transparency" in image.info


def is_grey(image: Image.Image) -> bool:
    return image.mode in {"1", "L", "LA", "La", "I", "F"} or image.mode.startswith("I;16")


def to_working_mode(image: Image.Image, *, alpha: bool = False) -> Image.Image:
    """The image as L, LA, RGB or RGBA (alpha kept, or added when `alpha`).

    Resampling and filling need one of these modes: palette images resample with
    nearest neighbour only, and 16-bit greys clip instead of scaling when converted.
    """
    alpha = alpha or has_alpha(image)
    if image.mode.startswith("I;16") or image.mode == "I":
        # 16-bit samples: scale to 8 bits instead of letting convert() clip at 255.
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    grey = is_grey(image)
    target = ("LA" if alpha else "L") if grey else ("RGBA" if alpha else "RGB")
    if image.mode == target:
        return image
    if image.mode in {"RGBa", "La"} or image.mode == "P":
        image = image.convert("RGBA")
    return image.convert(target)


def fill_for(image: Image.Image, colour: RGBA) -> tuple[Image.Image, int | tuple[int, ...]]:
    """The image in a working mode that can show `colour`, and the colour in that mode."""
    r, g, b, a = colour
    working = to_working_mode(image, alpha=a < 255)
    if working.mode in {"L", "LA"} and not r == g == b:
        working = working.convert("RGBA" if working.mode == "LA" else "RGB")
    match working.mode:
        case "L":
            return working, r
        case "LA":
            return working, (r, a)
        case "RGB":
            return working, (r, g, b)
        case _:
            return working, (r, g, b, a)


def flatten_onto_white(image: Image.Image) -> Image.Image:
    """The image as RGB, its transparent parts laid on white."""
    rgba = to_working_mode(image, alpha=True).convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")
