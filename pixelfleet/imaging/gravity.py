"""Compass gravities: where a smaller rectangle sits inside a larger one."""

from __future__ import annotations

from typing import Literal

Gravity = Literal[
    "center", "north", "south", "east", "west", "northeast", "northwest", "southeast", "southwest"
]


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
