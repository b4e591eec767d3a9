"""The local-directory storage: atomic writes, missing objects, keys that cannot escape."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pixelfleet.storage import LocalStorage, StoredObjectMissing
from pixelfleet.storage.local import STAGING_DIR, STALE_STAGED_SECONDS


async def test_objects_round_trip_and_stream_in_chunks(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    data = bytes(range(256)) * 1000
    await storage.put("results/a.webp", data)
    assert await storage.exists("results/a.webp")
    assert await storage.get("results/a.webp") == data
    chunks = [chunk async for chunk in await storage.open_stream("results/a.webp", chunk_size=4096)]
    assert b"".join(chunks) == data
    assert len(chunks) > 1
    assert not list((tmp_path / "results").glob(".tmp-*"))


async def test_missing_objects_are_reported_as_such(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(StoredObjectMissing):
        await storage.get("sources/nothing")
    with pytest.raises(StoredObjectMissing):
        await storage.open_stream("sources/nothing")
    await storage.delete("sources/nothing")  # deleting twice is fine
    assert not await storage.exists("sources/nothing")


async def test_a_stream_opened_before_a_delete_still_delivers_everything(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    await storage.put("results/b.png", b"x" * 100_000)
    stream = await storage.open_stream("results/b.png")
    await storage.delete("results/b.png")
    assert b"".join([chunk async for chunk in stream]) == b"x" * 100_000


@pytest.mark.parametrize(
    "key", ["../outside", "/etc/passwd", "a/../../b", "", "a//b", ".hidden", "a/./b", "a\\b"]
)
async def test_keys_cannot_leave_the_storage_root(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "root")
    with pytest.raises(ValueError, match="invalid storage key"):
        await storage.put(key, b"data")
    assert not (tmp_path / "outside").exists()


async def test_a_staged_object_is_written_once_and_renamed_into_place(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    staged = storage.stage()
    staged.file.write(b"x" * 100_000)
    (written,) = (tmp_path / STAGING_DIR).iterdir()
    inode = written.stat().st_ino
    await staged.store("sources/a")
    assert (tmp_path / "sources" / "a").stat().st_ino == inode  # the same file, not a copy
    assert not list((tmp_path / STAGING_DIR).iterdir())


async def test_a_staged_file_left_by_an_ended_process_is_deleted_once_stale(
    tmp_path: Path,
) -> None:
    LocalStorage(tmp_path).stage().discard()  # makes the staging directory
    stale = tmp_path / STAGING_DIR / "upload-stale"
    fresh = tmp_path / STAGING_DIR / "upload-fresh"
    stale.write_bytes(b"left behind")
    fresh.write_bytes(b"being written")
    long_ago = time.time() - STALE_STAGED_SECONDS - 60
    os.utime(stale, (long_ago, long_ago))
    LocalStorage(tmp_path).stage().discard()
    assert not stale.exists()
    assert fresh.exists()
