"""Gravities: where a smaller rectangle sits inside a larger one, by compass point or around
a focal point."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Gravity = Literal[
    "center", "north", "south", "east", "west", "northeast", "northwest", "southeast", "southwest"
]


class FocalPoint(BaseModel):
    """A point of the image to keep in view, in fractions of its width and height."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: float = Field(ge=0.0, le=1.0, description="From the left edge (0) to the right (1).")
    y: float = Field(ge=0.0, le=1.0, description="From the top edge (0) to the bottom (1).")


def place(
    container: tuple[int, int], item: tuple[int, int], gravity: Gravity, margin: int = 0
) -> tuple[int, int]:
    """The item's top-left corner; `margin` keeps it off the edges it is pushed against.

    The offset may be negative (or past the far edge) when the item does not fit.
    """
    spare_x, spare_y = container[0] - item[0], container[1] - item[1]
    if "west" in gravity:
        left = margin
    elif "east" in gravity:
        left = spare_x - margin
    else:
        left = spare_x // 2
    if "north" in gravity:
        top = margin
    elif "south" in gravity:
        top = spare_y - margin
    else:
        top = spare_y // 2
    return left, top


def centred_on(
    container: tuple[int, int], item: tuple[int, int], centre: tuple[float, float]
) -> tuple[int, int]:
    """The top-left corner of an item (no larger than the container) centred as near to
    `centre` (in the container's pixels) as the container's edges allow."""
    left = min(max(round(centre[0] - item[0] / 2), 0), container[0] - item[0])
    top = min(max(round(centre[1] - item[1] / 2), 0), container[1] - item[1])
    return left, top


def around(container: tuple[int, int], item: tuple[int, int], point: FocalPoint) -> tuple[int, int]:
    """The item's top-left corner, centred on the focal point as far as the edges allow."""
    return centred_on(container, item, (point.x * container[0], point.y * container[1]))
