"""Structural similarity (SSIM) between two images, to compare results with references."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image

_WINDOW = 7
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def _window_mean(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mean over every 7x7 window ("valid" positions only), via a summed-area table."""
    table = np.pad(values, ((1, 0), (1, 0))).cumsum(axis=0).cumsum(axis=1)
    k = _WINDOW
    sums = table[k:, k:] - table[:-k, k:] - table[k:, :-k] + table[:-k, :-k]
    return sums / (k * k)


def _channel_ssim(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    mx, my = _window_mean(x), _window_mean(y)
    vx = _window_mean(x * x) - mx * mx
    vy = _window_mean(y * y) - my * my
    cxy = _window_mean(x * y) - mx * my
    ssim_map = ((2 * mx * my + _C1) * (2 * cxy + _C2)) / (
        (mx * mx + my * my + _C1) * (vx + vy + _C2)
    )
    return float(ssim_map.mean())


def ssim(a: Image.Image, b: Image.Image) -> float:
    """Mean SSIM over the colour channels (and alpha, if either image has it); 1.0 is identical."""
    assert a.size == b.size, f"sizes differ: {a.size} != {b.size}"
    assert min(a.size) >= _WINDOW, "images must be at least 7x7"
    alpha = "A" in a.getbands() or "A" in b.getbands()
    mode = "RGBA" if alpha else "RGB"
    xs = np.asarray(a.convert(mode), dtype=np.float64)
    ys = np.asarray(b.convert(mode), dtype=np.float64)
    return float(np.mean([_channel_ssim(xs[..., c], ys[..., c]) for c in range(xs.shape[-1])]))
