from __future__ import annotations

from pixelfleet.errors import NotFound


class AssetNotFound(NotFound):
    slug = "asset-not-found"
    title = "Asset not found"
