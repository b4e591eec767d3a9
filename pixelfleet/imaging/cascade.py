"""Several shrinks of one image, each resampled from the smallest one already made that is
still comfortably larger than it, instead of every one from the full-size image.

Variants of one upload (2048, 1280, 640 and 150 px wide, say) then cost one resample of the
large image and a few cheap ones of smaller images, while each still looks like a single
LANCZOS resample of the source.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from PIL import Image

from pixelfleet.imaging.operations import resize

Size = tuple[int, int]

CASCADE_RATIO = 1.5
"""How much larger, on both sides, an image must be to be resampled from instead of the
source. LANCZOS passes the frequencies below about two thirds of its cut-off nearly untouched,
so from 1.5x up a second resample shows no softening a viewer (or SSIM, >= 0.99) notices."""


def _area(size: Size) -> int:
    return size[0] * size[1]


def _comfortably_larger(larger: Size, size: Size) -> bool:
    return larger[0] >= CASCADE_RATIO * size[0] and larger[1] >= CASCADE_RATIO * size[1]


class ResampleCascade:
    """The resamples of `base` to the given sizes (one per request; a size may repeat),
    planned largest first and made on demand, in any order.

    Nothing handed out is changed here; a resample is kept only until its last request
    (or the last resample made from it), and that request receives it to own. Each
    resample is made by `resample` (an image and a size in, the resampled image out).
    """

    def __init__(
        self,
        base: Image.Image,
        sizes: Sequence[Size],
        resample: Callable[[Image.Image, Size], Image.Image] | None = None,
    ) -> None:
        self._base = base
        self._resample = resample or resize.resample
        self._uses: Counter[Size] = Counter(sizes)
        self._parents: dict[Size, Size | None] = {}
        self._made: dict[Size, Image.Image] = {}
        planned: list[Size] = []
        for size in sorted(set(sizes), key=_area, reverse=True):
            larger = [made for made in planned if _comfortably_larger(made, size)]
            parent = min(larger, key=_area, default=None)
            self._parents[size] = parent
            if parent is not None:
                self._uses[parent] += 1
            planned.append(size)

    def take(self, size: Size) -> tuple[Image.Image, bool]:
        """The base resampled to `size`, and whether the caller may change it in place
        (nothing else will read it)."""
        if size not in self._parents:  # not planned: made on its own, for the caller alone
            image = self._resample(self._base, size)
            return image, image is not self._base
        if size not in self._made:
            parent = self._parents[size]
            source = self._base if parent is None else self.take(parent)[0]
            self._made[size] = self._resample(source, size)
        image = self._made[size]
        self._uses[size] -= 1
        if self._uses[size] > 0:
            return image, False
        del self._made[size]
        return image, image is not self._base
