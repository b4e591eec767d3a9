"""Where uploads and results live: a port (`Storage`) and its adapters."""

from pixelfleet.storage.base import (
    PresignedAnswer,
    PresignedPut,
    StagedObject,
    Storage,
    StoredObjectMissing,
)
from pixelfleet.storage.local import LocalStorage

__all__ = [
    "LocalStorage",
    "PresignedAnswer",
    "PresignedPut",
    "StagedObject",
    "Storage",
    "StoredObjectMissing",
]
