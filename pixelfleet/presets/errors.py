from __future__ import annotations

from pixelfleet.errors import Conflict, NotFound


class PresetNotFound(NotFound):
    slug = "preset-not-found"
    title = "Preset not found"


class PresetExists(Conflict):
    slug = "preset-exists"
    title = "Preset already exists"
