"""Storage in a local directory; writes are atomic (temporary file, then rename)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from pixelfleet.storage.base import PresignedAnswer, StoredObjectMissing
from pixelfleet.storage.keys import check_key

STAGING_DIR = ".staging"
"""Where objects are written before they have a key: inside the root (so storing one is a
rename on the same file system), under a name no key can take (keys start with a letter or
digit)."""
STALE_STAGED_SECONDS = 3600.0
"""A staged file this old was left by a process that ended mid-write (a staged upload is
stored or discarded within its request): a storage's first `stage` deletes it."""


class LocalStaged:
    """A staged object: a file in the staging directory, renamed into place by `store`."""

    def __init__(self, storage: LocalStorage, staging: Path) -> None:
        self._storage = storage
        fd, name = tempfile.mkstemp(dir=staging, prefix="upload-")
        self._path: Path | None = Path(name)
        self.file: BinaryIO = os.fdopen(fd, "w+b")

    def read(self) -> bytes:
        self.file.flush()
        fd = self.file.fileno()
        return os.pread(fd, os.fstat(fd).st_size, 0)

    async def store(self, key: str) -> None:
        if self._path is None:
            raise ValueError("this staged object was stored or discarded already")
        target = self._storage.path_for(key)
        self.file.close()  # its bytes are in the page cache: a rename is all storing takes
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path, target)
        self._path = None

    def discard(self) -> None:
        self.file.close()
        if self._path is not None:
            self._path.unlink(missing_ok=True)
            self._path = None


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._staging: Path | None = None  # made by the first `stage`

    def _staging_dir(self) -> Path:
        if self._staging is None:
            staging = self.root / STAGING_DIR
            staging.mkdir(parents=True, exist_ok=True)
            self._delete_stale_staged(staging)
            self._staging = staging
        return self._staging

    @staticmethod
    def _delete_stale_staged(staging: Path) -> None:
        oldest = time.time() - STALE_STAGED_SECONDS
        for entry in os.scandir(staging):
            with contextlib.suppress(FileNotFoundError):  # another process deleted it first
                if entry.stat().st_mtime < oldest:
                    os.unlink(entry.path)

    def stage(self) -> LocalStaged:
        return LocalStaged(self, self._staging_dir())

    def presigned_put(
        self, key: str, content_type: str, size: int, expires_in_seconds: int
    ) -> None:
        check_key(key)
        return None  # nothing but the API can write here

    def presigned_get(
        self, key: str, expires_in_seconds: int, answer: PresignedAnswer
    ) -> None:
        check_key(key)
        return None  # the API serves these bytes itself

    def path_for(self, key: str) -> Path:
        return self.root / check_key(key)

    def _write(self, key: str, data: bytes) -> None:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _read(self, key: str) -> bytes:
        try:
            return self.path_for(key).read_bytes()
        except FileNotFoundError as exc:
            raise StoredObjectMissing(key) from exc

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._read, key)

    def local_path(self, key: str) -> Path:
        return self.path_for(key)

    async def open_stream(
        self, key: str, chunk_size: int = 64 * 1024, *, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        path = self.path_for(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as exc:
            raise StoredObjectMissing(key) from exc
        if start:
            handle.seek(start)

        async def chunks() -> AsyncIterator[bytes]:
            # An open file survives its deletion, so a purge cannot cut a download short.
            left = length
            try:
                while left is None or left > 0:
                    wanted = chunk_size if left is None else min(chunk_size, left)
                    chunk = await asyncio.to_thread(handle.read, wanted)
                    if not chunk:
                        return
                    if left is not None:
                        left -= len(chunk)
                    yield chunk
            finally:
                handle.close()

        return chunks()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path_for(key).unlink, True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_for(key).is_file)
