"""The safety limits the imaging code enforces (filled from settings by the caller)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageLimits:
    max_upload_bytes: int = 25 * 1024 * 1024
    max_source_pixels: int = 50_000_000
    max_output_pixels: int = 50_000_000
    max_output_side: int = 12_000
    max_operations: int = 20
    max_frames: int = 1000
    max_animation_pixels: int = 50_000_000
    """The pixels of all the frames an animated output decodes, and of all it writes."""
    max_variants: int = 8

    def describe(self, name: str, unit: str) -> str:
        """`the limit is 50000000 pixels (max_source_pixels)`: how every refusal names its limit."""
        return f"the limit is {getattr(self, name)} {unit} ({name})"
