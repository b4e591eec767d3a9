from __future__ import annotations

from pixelfleet.errors import PixelFleetError


class InsufficientCredits(PixelFleetError):
    status = 402
    slug = "insufficient-credits"
    title = "Insufficient credits"
