"""Lay a translucent mark on the image: a line of text, or an image the user uploaded earlier."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal, Self

from PIL import Image, ImageDraw, ImageFont
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pixelfleet.imaging.colours import Colour, has_alpha, is_grey, parse_colour, to_working_mode
from pixelfleet.imaging.errors import ProcessingFailed
from pixelfleet.imaging.gravity import Gravity, place

_TEXT_ONLY = frozenset({"size", "colour"})
_ASSET_ONLY = frozenset({"scale"})


class WatermarkParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["watermark"] = "watermark"
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="One line of text to lay on the image.",
    )
    asset: uuid.UUID | None = Field(
        default=None, description="Instead of text: the id of an image you uploaded earlier."
    )
    size: int = Field(default=24, ge=4, le=1000, description="Text size in pixels (text only).")
    colour: Colour = Field(default="#ffffff", description="Text colour (text only).")
    opacity: float = Field(default=0.5, ge=0, le=1, description="0 is invisible, 1 opaque.")
    position: Gravity = Field(default="southeast", description="Where the mark sits.")
    margin: int = Field(
        default=16, ge=0, le=10_000, description="Pixels between the mark and the nearest edges."
    )
    scale: float = Field(
        default=0.25,
        ge=0.01,
        le=1,
        description="The asset's width as a fraction of the image's width (asset only).",
    )

    @model_validator(mode="after")
    def _text_or_asset(self) -> Self:
        if (self.text is None) == (self.asset is None):
            raise ValueError("give either text or asset")
        # A dumped model carries every default back in; only a changed one is a mistake.
        if self.asset is not None and self._changed(_TEXT_ONLY):
            raise ValueError("size and colour apply to text watermarks only")
        if self.text is not None and self._changed(_ASSET_ONLY):
            raise ValueError("scale applies to asset watermarks only")
        return self

    def _changed(self, names: frozenset[str]) -> bool:
        fields = type(self).model_fields
        return any(getattr(self, name) != fields[name].default for name in names)


def output_size(size: tuple[int, int], params: WatermarkParams) -> tuple[int, int]:
    return size


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled font: no font files to ship or to trust. Loading it takes
    # microseconds, and a font object is not shared between worker threads.
    return ImageFont.load_default(size=size)


def _visible(
    canvas: tuple[int, int], origin: tuple[int, int], size: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """The part of a box at `origin` that falls on the canvas, or None."""
    left, top = max(origin[0], 0), max(origin[1], 0)
    right = min(origin[0] + size[0], canvas[0])
    bottom = min(origin[1] + size[1], canvas[1])
    if right <= left or bottom <= top:
        return None
    return left, top, right, bottom


def _visible_span(
    text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, pen: float, box: tuple[int, int]
) -> tuple[int, int, float]:
    """The characters of a line drawn from x=`pen` that may show between box[0] and
    box[1] (with a character's slack each side), and where the first of them starts."""
    slack = max(font.getbbox("W")[2], 1)
    if pen >= box[0] - slack and pen + font.getlength(text) <= box[1] + slack:
        return 0, len(text), 0.0
    offsets = [font.getlength(text[:end]) for end in range(len(text) + 1)]
    start = max((i for i, at in enumerate(offsets) if pen + at <= box[0] - slack), default=0)
    stop = min((i for i, at in enumerate(offsets) if pen + at >= box[1] + slack), default=len(text))
    return start, stop, offsets[start]


def _text_layer(
    canvas: tuple[int, int], params: WatermarkParams
) -> tuple[Image.Image, tuple[int, int], bool] | None:
    """The visible part of the text as RGBA, where it goes, and whether it has colour.

    Only the characters that can show are drawn: a 200-character line at 1000 pixels
    would otherwise rasterise a hundred megapixels to keep a few.
    """
    assert params.text is not None
    font = _font(params.size)
    ink = font.getbbox(params.text)
    left, top = math.floor(ink[0]), math.floor(ink[1])
    size = (math.ceil(ink[2]) - left, math.ceil(ink[3]) - top)
    origin = place(canvas, size, params.position, params.margin)
    box = _visible(canvas, origin, size)
    if box is None:
        return None
    pen = origin[0] - left
    start, stop, advance = _visible_span(params.text, font, pen, (box[0], box[2]))
    mask = Image.new("L", (box[2] - box[0], box[3] - box[1]), 0)
    at = (pen + advance - box[0], origin[1] - top - box[1])
    ImageDraw.Draw(mask).text(at, params.text[start:stop], fill=255, font=font)
    r, g, b, a = parse_colour(params.colour)
    strength = params.opacity * a / 255
    layer = Image.new("RGBA", mask.size, (r, g, b, 0))
    layer.putalpha(mask.point(lambda v: round(v * strength)))
    return layer, (box[0], box[1]), not r == g == b


def _asset_layer(
    canvas: tuple[int, int], params: WatermarkParams, asset: Image.Image
) -> tuple[Image.Image, tuple[int, int], bool] | None:
    width = max(1, round(params.scale * canvas[0]))
    height = max(1, round(asset.height * width / asset.width))
    working = to_working_mode(asset, alpha=True)
    coloured = not is_grey(working)
    # Resampled premultiplied, so transparent pixels lend no colour to the edges.
    premultiplied = working.convert("RGBA").convert("RGBa")
    if premultiplied.size != (width, height):
        premultiplied = premultiplied.resize(
            (width, height), Image.Resampling.LANCZOS, reducing_gap=2.0
        )
    layer = premultiplied.convert("RGBA")
    origin = place(canvas, layer.size, params.position, params.margin)
    box = _visible(canvas, origin, layer.size)
    if box is None:
        return None
    layer = layer.crop(
        (box[0] - origin[0], box[1] - origin[1], box[2] - origin[0], box[3] - origin[1])
    )
    layer.putalpha(layer.getchannel("A").point(lambda v: round(v * params.opacity)))
    return layer, (box[0], box[1]), coloured


Layer = tuple[Image.Image, tuple[int, int], bool]
_kept_layers: ContextVar[dict[tuple[object, ...], Layer | None] | None] = ContextVar(
    "kept_layers", default=None
)


@contextmanager
def layers_kept() -> Iterator[None]:
    """Within it, a mark is drawn once for each canvas size and laid on every frame: an
    animation's frames share their watermarks (the text set, or the asset resampled)."""
    token = _kept_layers.set({})
    try:
        yield
    finally:
        _kept_layers.reset(token)


def _layer(
    canvas: tuple[int, int], params: WatermarkParams, asset: Image.Image | None
) -> Layer | None:
    kept = _kept_layers.get()
    if kept is not None:
        # The asset is the same object for every frame of one run, which holds it meanwhile.
        key = (canvas, params.model_dump_json(), id(asset))
        if key in kept:
            return kept[key]
    if params.asset is not None:
        if asset is None:
            raise ProcessingFailed(f"the watermark asset {params.asset} is not available")
        found = _asset_layer(canvas, params, asset)
    else:
        found = _text_layer(canvas, params)
    if kept is not None:
        kept[key] = found
    return found


def watermarked(
    image: Image.Image,
    params: WatermarkParams,
    asset: Image.Image | None = None,
    *,
    in_place: bool = False,
) -> Image.Image:
    """The image with the mark; with `in_place` the image itself may be drawn on."""
    found = _layer(image.size, params, asset)
    if found is None or params.opacity == 0:
        return image
    layer, origin, coloured = found
    working = to_working_mode(image)
    if coloured and is_grey(working):
        working = working.convert("RGBA" if has_alpha(working) else "RGB")
    if working is image and not in_place:
        working = image.copy()
    if not has_alpha(working):
        working.paste(layer.convert(working.mode), origin, layer.getchannel("A"))
        return working
    if working.mode == "RGBA":
        working.alpha_composite(layer, origin)
        return working
    composed = working.convert("RGBA")
    composed.alpha_composite(layer, origin)
    return composed.convert(working.mode)


def apply(
    image: Image.Image, params: WatermarkParams, asset: Image.Image | None = None
) -> Image.Image:
    """Pure: the input is left untouched. An asset watermark needs the decoded `asset`."""
    return watermarked(image, params, asset)
