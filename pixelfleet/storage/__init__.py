"""Where uploads and results live: a port (`Storage`) and its adapters."""

from pixelfleet.storage.base import Storage, StoredObjectMissing
from pixelfleet.storage.local import LocalStorage

__all__ = ["LocalStorage", "Storage", "StoredObjectMissing", "storage_from_url"]


def storage_from_url(url: str) -> Storage:
    if url.startswith("file://"):
        from pathlib import Path

        return LocalStorage(Path(url.removeprefix("file://")))
    raise ValueError(f"unsupported storage URL {url!r}: use file:///path")
