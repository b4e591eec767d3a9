"""Where uploads and results live: a port (`Storage`) and its adapters."""

from pixelfleet.storage.base import PresignedPut, StagedObject, Storage, StoredObjectMissing
from pixelfleet.storage.local import LocalStorage

__all__ = ["LocalStorage", "PresignedPut", "StagedObject", "Storage", "StoredObjectMissing"]
