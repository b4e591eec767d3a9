"""Builds the storage adapter a storage URL names."""

from __future__ import annotations

from pixelfleet.settings import Settings
from pixelfleet.storage.base import Storage
from pixelfleet.storage.local import LocalStorage


def create_storage(settings: Settings) -> Storage:
    return LocalStorage(settings.storage_root)
