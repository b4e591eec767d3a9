"""A GIF's blocks read from its bytes, without decoding: its logical screen, where each frame
lies on it, and where the file ends.

Pillow grows the canvas for a frame that reaches past the logical screen, but counts frames
without looking at them, so a GIF that states a 10x10 screen may hold a 15000x15000 frame.
The layout tells the truth before anything is decoded."""

from __future__ import annotations

import struct
from dataclasses import dataclass

_SIGNATURES = (b"GIF87a", b"GIF89a")
_EXTENSION, _IMAGE, _TRAILER = 0x21, 0x2C, 0x3B


@dataclass(frozen=True)
class GifLayout:
    screen: tuple[int, int]
    frames: tuple[tuple[int, int, int, int], ...]
    """Each frame's left, top, width and height on the screen, in the file's order."""
    end: int | None
    """Just after the trailer; None when the blocks do not lead to one (a damaged file)."""

    @property
    def canvas(self) -> tuple[int, int]:
        """The size that holds the screen and every frame."""
        width = max([self.screen[0], *(left + w for left, _, w, _ in self.frames)])
        height = max([self.screen[1], *(top + h for _, top, _, h in self.frames)])
        return width, height


def _sub_blocks_end(data: bytes, position: int) -> int | None:
    while position < len(data):
        size = data[position]
        position += 1 + size
        if size == 0:
            return position
    return None


def _colour_table(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def gif_layout(data: bytes) -> GifLayout | None:
    """The layout of a GIF's blocks (as far as they can be followed); None if not a GIF."""
    if data[:6] not in _SIGNATURES or len(data) < 13:
        return None
    screen = struct.unpack_from("<HH", data, 6)
    frames: list[tuple[int, int, int, int]] = []
    position: int | None = 13 + _colour_table(data[10])
    while position is not None and position < len(data):
        block = data[position]
        if block == _TRAILER:
            return GifLayout(screen, tuple(frames), position + 1)
        if block == _EXTENSION:  # label, then sub-blocks
            position = _sub_blocks_end(data, position + 2)
        elif block == _IMAGE:  # descriptor, local colour table, LZW code size, data
            if position + 10 > len(data):
                break
            frames.append(struct.unpack_from("<HHHH", data, position + 1))
            position += 10 + _colour_table(data[position + 9]) + 1
            position = _sub_blocks_end(data, position)
        else:
            break
    return GifLayout(screen, tuple(frames), None)
