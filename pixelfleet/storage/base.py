from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol


class StoredObjectMissing(LookupError):
    """The key names no stored object (expired or deleted)."""


class Storage(Protocol):
    """Opaque keys to bytes. Keys are made by PixelFleet, never taken from users."""

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    def local_path(self, key: str) -> Path | None:
        """Where the object is a file on this machine (for a reader that opens it itself, a
        pipeline process say); None where objects are not local files."""
        ...

    async def open_stream(self, key: str, chunk_size: int = 64 * 1024) -> AsyncIterator[bytes]:
        """Opens the object now (StoredObjectMissing if it is gone) and streams it later."""
        ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...
