"""What every storage adapter promises, checked on each: a local directory and S3 (moto)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pixelfleet.storage import LocalStorage, Storage, StoredObjectMissing
from pixelfleet.storage.s3 import S3Storage

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DATA = bytes(range(256)) * 1000


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "files")
    # Only the S3 cases ask for these, so local-only runs never start moto.
    client: S3Client = request.getfixturevalue("s3_client")
    bucket: str = request.getfixturevalue("s3_bucket")
    return S3Storage(client, bucket, "pixelfleet")


async def test_an_object_round_trips(storage: Storage) -> None:
    await storage.put("results/a.webp", DATA)
    assert await storage.get("results/a.webp") == DATA


async def test_an_object_written_again_holds_the_new_bytes(storage: Storage) -> None:
    await storage.put("sources/a", b"first")
    await storage.put("sources/a", b"second")
    assert await storage.get("sources/a") == b"second"


async def test_an_empty_object_round_trips(storage: Storage) -> None:
    await storage.put("results/empty", b"")
    assert await storage.exists("results/empty")
    assert await storage.get("results/empty") == b""
    assert [chunk async for chunk in await storage.open_stream("results/empty")] == []


async def test_a_stream_delivers_the_object_in_chunks_of_at_most_the_asked_size(
    storage: Storage,
) -> None:
    await storage.put("results/big.png", DATA)
    chunks = [chunk async for chunk in await storage.open_stream("results/big.png", 4096)]
    assert b"".join(chunks) == DATA
    assert len(chunks) >= len(DATA) // 4096
    assert all(0 < len(chunk) <= 4096 for chunk in chunks)


@pytest.mark.parametrize(
    ("start", "length"),
    [(0, 10), (5000, 4096), (9990, 10), (9990, None), (0, None), (123, 7000)],
)
async def test_a_stream_may_start_anywhere_and_deliver_so_many_bytes(
    storage: Storage, start: int, length: int | None
) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes, no two neighbours alike
    await storage.put("results/ranged.png", data)
    stream = await storage.open_stream("results/ranged.png", 1024, start=start, length=length)
    chunks = [chunk async for chunk in stream]
    end = None if length is None else start + length
    assert b"".join(chunks) == data[start:end]
    assert all(len(chunk) <= 1024 for chunk in chunks)


async def test_a_stream_left_early_can_be_closed(storage: Storage) -> None:
    await storage.put("results/big.png", DATA)
    stream = await storage.open_stream("results/big.png", 4096)
    assert len(await anext(stream)) == 4096
    await stream.aclose()  # type: ignore[attr-defined]
    assert await storage.get("results/big.png") == DATA


async def test_a_missing_object_is_reported_as_missing(storage: Storage) -> None:
    with pytest.raises(StoredObjectMissing):
        await storage.get("sources/nothing")
    with pytest.raises(StoredObjectMissing):
        await storage.open_stream("sources/nothing")  # on opening, before any chunk is read
    assert not await storage.exists("sources/nothing")


async def test_a_deleted_object_is_gone_and_deleting_it_again_is_fine(storage: Storage) -> None:
    await storage.put("sources/a", b"data")
    await storage.delete("sources/a")
    await storage.delete("sources/a")
    await storage.delete("sources/never-stored")
    assert not await storage.exists("sources/a")
    with pytest.raises(StoredObjectMissing):
        await storage.get("sources/a")


async def test_exists_tells_a_stored_object_from_an_absent_one(storage: Storage) -> None:
    await storage.put("assets/logo.png", b"png")
    assert await storage.exists("assets/logo.png")
    assert not await storage.exists("assets/other.png")
    assert not await storage.exists("assets")  # a "directory" is not an object


@pytest.mark.parametrize(
    "key",
    ["../outside", "/etc/passwd", "a/../../b", "", "a//b", ".hidden", "a/./b", "a\\b", "a/", "a\n"],
)
async def test_invalid_keys_are_refused_by_every_operation(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError, match="invalid storage key"):
        await storage.put(key, b"data")
    with pytest.raises(ValueError, match="invalid storage key"):
        await storage.get(key)
    with pytest.raises(ValueError, match="invalid storage key"):
        await storage.open_stream(key)
    with pytest.raises(ValueError, match="invalid storage key"):
        await storage.delete(key)
    with pytest.raises(ValueError, match="invalid storage key"):
        await storage.exists(key)
    with pytest.raises(ValueError, match="invalid storage key"):
        storage.local_path(key)


async def test_two_prefixes_in_one_bucket_do_not_see_each_others_objects(
    s3_client: S3Client, s3_bucket: str
) -> None:
    # "tenant" is a string prefix of "tenant2": the slash after a prefix keeps them apart.
    first = S3Storage(s3_client, s3_bucket, "tenant")
    second = S3Storage(s3_client, s3_bucket, "tenant2")
    await first.put("results/a.webp", b"first")
    await second.put("results/b.webp", b"second")

    assert await first.get("results/a.webp") == b"first"
    assert not await first.exists("results/b.webp")
    assert not await second.exists("results/a.webp")
    with pytest.raises(StoredObjectMissing):
        await second.get("results/a.webp")
    await second.delete("results/a.webp")
    assert await first.get("results/a.webp") == b"first"

    listing = s3_client.list_objects_v2(Bucket=s3_bucket)
    stored = sorted(item.get("Key", "") for item in listing.get("Contents", []))
    assert stored == ["tenant/results/a.webp", "tenant2/results/b.webp"]


async def test_a_local_path_is_given_only_where_it_holds_the_objects_bytes(
    storage: Storage,
) -> None:
    await storage.put("sources/photo", DATA)
    path = storage.local_path("sources/photo")
    if isinstance(storage, LocalStorage):
        assert path is not None
        assert path.read_bytes() == DATA
    else:
        assert path is None


async def test_a_staged_object_is_stored_under_its_key_with_every_byte_written(
    storage: Storage,
) -> None:
    staged = storage.stage()
    for start in range(0, len(DATA), 65536):
        staged.file.write(DATA[start : start + 65536])
    staged.file.seek(0)  # where the object is read from does not matter
    assert staged.read() == DATA
    assert not await storage.exists("sources/staged")
    await staged.store("sources/staged")
    assert await storage.get("sources/staged") == DATA
    staged.discard()  # after it is stored, nothing
    assert await storage.get("sources/staged") == DATA


async def test_a_discarded_staged_object_leaves_nothing_and_cannot_be_stored(
    storage: Storage,
) -> None:
    staged = storage.stage()
    staged.file.write(DATA)
    staged.discard()
    staged.discard()
    with pytest.raises(ValueError, match="stored or discarded"):
        await staged.store("sources/staged")
    assert not await storage.exists("sources/staged")
