from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


class StoredObjectMissing(LookupError):
    """The key names no stored object (expired or deleted)."""


class StagedObject(Protocol):
    """An object being written as its bytes arrive (an upload, say), not yet under a key.

    `file` takes the bytes: its writes are quick enough for the event loop (a local file, or
    memory), so a stream is written chunk by chunk without a thread hop per chunk. `store`
    puts what was written under its key (for a local file, a rename: no second write);
    `discard` drops it, and does nothing once it is stored."""

    file: BinaryIO

    def read(self) -> bytes:
        """Every byte written so far (wherever the file's position is)."""
        ...

    async def store(self, key: str) -> None: ...

    def discard(self) -> None: ...


@dataclass(frozen=True)
class PresignedPut:
    """Where a client sends an object's bytes itself: a PUT to `url` with `headers`."""

    url: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class PresignedAnswer:
    """The headers a presigned GET is answered with, whatever the object was stored with."""

    content_type: str
    content_disposition: str
    cache_control: str


class Storage(Protocol):
    """Opaque keys to bytes. Keys are made by PixelFleet, never taken from users."""

    async def put(self, key: str, data: bytes) -> None: ...

    def stage(self) -> StagedObject:
        """A new object to write now and store under a key later."""
        ...

    def presigned_put(
        self, key: str, content_type: str, size: int, expires_in_seconds: int
    ) -> PresignedPut | None:
        """A URL on which a client may PUT exactly `size` bytes of `content_type` under `key`
        for the time given, with no other credential; None where the storage offers none (a
        local directory: the API receives such bytes itself)."""
        ...

    def presigned_get(
        self, key: str, expires_in_seconds: int, answer: PresignedAnswer
    ) -> str | None:
        """A URL on which anyone may GET the object, answered with `answer`'s headers, for the
        time given; None where the storage offers none (a local directory)."""
        ...

    async def get(self, key: str) -> bytes: ...

    def local_path(self, key: str) -> Path | None:
        """Where the object is a file on this machine (for a reader that opens it itself, a
        pipeline process say); None where objects are not local files."""
        ...

    async def open_stream(
        self, key: str, chunk_size: int = 64 * 1024, *, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """Opens the object now (StoredObjectMissing if it is gone) and streams it later: its
        bytes from `start`, `length` of them (all the rest when None)."""
        ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...
