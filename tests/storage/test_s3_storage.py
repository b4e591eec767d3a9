"""S3 storage: the storage URL picks the adapter, errors say what is wrong, and the whole API
(upload, processing, download) works with its files in an S3 bucket under a prefix."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from botocore.exceptions import ClientError
from PIL import Image

from pixelfleet.context import ProcessContext
from pixelfleet.settings import Settings
from pixelfleet.storage import LocalStorage, StoredObjectMissing
from pixelfleet.storage.factory import create_storage
from pixelfleet.storage.s3 import S3Storage, create_s3_client
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import noise_png, sign_up, submit
from tests.storage.conftest import S3_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def test_without_a_storage_url_files_go_under_the_data_dir(tmp_path: Path) -> None:
    storage = create_storage(Settings(data_dir=tmp_path, storage_url=None))
    assert isinstance(storage, LocalStorage)
    assert storage.root == (tmp_path / "files").resolve()


def test_a_file_url_names_a_local_directory(tmp_path: Path) -> None:
    storage = create_storage(Settings(storage_url=f"file://{tmp_path}/elsewhere"))
    assert isinstance(storage, LocalStorage)
    assert storage.root == (tmp_path / "elsewhere").resolve()


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://media", "media", ""),
        ("s3://media/", "media", ""),
        ("s3://media/pixelfleet", "media", "pixelfleet"),
        ("s3://media/env/prod/", "media", "env/prod"),
    ],
)
def test_an_s3_url_names_a_bucket_and_a_key_prefix(url: str, bucket: str, prefix: str) -> None:
    storage = create_storage(Settings(storage_url=url, s3_region="eu-west-1"))
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix) == (bucket, prefix)
    assert storage.object_key("results/a.png") == (
        f"{prefix}/results/a.png" if prefix else "results/a.png"
    )


@pytest.mark.parametrize("url", ["ftp://x", "/srv/files", "https://s3.example.com/bucket"])
def test_an_unsupported_storage_url_is_refused_naming_the_supported_ones(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported storage URL") as refused:
        create_storage(Settings(storage_url=url))
    assert repr(url) in str(refused.value)
    assert "file:///path" in str(refused.value)
    assert "s3://bucket/prefix" in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "s3://",
        "s3:///prefix",
        "s3://media/../up",
        "s3://media/a//b",
        "s3://media/.hidden",
        "s3://media/p?versioning=1",
        "s3://key:secret@media/p",
    ],
)
def test_a_malformed_s3_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="invalid S3 storage URL"):
        create_storage(Settings(storage_url=url, s3_region="eu-west-1"))


def test_half_a_credential_pair_is_refused() -> None:
    with pytest.raises(ValueError, match="PIXELFLEET_S3_SECRET_ACCESS_KEY"):
        create_s3_client(Settings(s3_region="eu-west-1", s3_access_key_id="AKIAEXAMPLE"))


def test_importing_the_storage_package_does_not_import_boto3() -> None:
    # boto3 takes a noticeable fraction of a second to import; local-storage processes skip it.
    code = (
        "import sys, pixelfleet.storage, pixelfleet.storage.factory; "
        "assert 'boto3' not in sys.modules, 'boto3 was imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


async def test_a_missing_bucket_is_an_error_not_a_missing_object(s3_client: S3Client) -> None:
    storage = S3Storage(s3_client, "no-such-bucket-for-pixelfleet", "p")
    with pytest.raises(ClientError, match="NoSuchBucket"):
        await storage.get("results/a.png")
    with pytest.raises(ClientError, match="NoSuchBucket"):
        await storage.put("results/a.png", b"data")


async def test_a_missing_object_is_missing_even_with_no_prefix(
    s3_client: S3Client, s3_bucket: str
) -> None:
    storage = S3Storage(s3_client, s3_bucket)
    await storage.put("results/a.png", b"data")
    assert [
        item.get("Key") for item in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]
    ] == ["results/a.png"]
    with pytest.raises(StoredObjectMissing):
        await storage.get("results/b.png")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_whole_api_works_with_files_in_s3(
    tmp_path: Path,
    s3_context: ProcessContext,
    s3_api: httpx.AsyncClient,
    s3_client: S3Client,
    s3_bucket: str,
) -> None:
    assert isinstance(s3_context.storage, S3Storage)
    # A PNG of noise stays large after resizing, so the download streams in many chunks.
    pipeline = {"operations": [{"op": "resize", "width": 600}], "output": {"format": "png"}}
    headers = await sign_up(s3_api, "ann@example.com")
    response = await submit(s3_api, headers, pipeline, noise_png((800, 600)), filename="noise.png")
    assert response.status_code == 202, response.text
    task_id = response.json()["id"]

    assert await drain_queue(s3_context) == ["succeeded"]

    result = await s3_api.get(f"/v1/tasks/{task_id}/result", headers=headers)
    assert result.status_code == 200, result.text
    assert result.headers["content-type"] == "image/png"
    assert len(result.content) > 4 * 64 * 1024
    with Image.open(io.BytesIO(result.content)) as image:
        image.load()
        assert (image.format, image.size) == ("PNG", (600, 450))
    # A range is read from the bucket as a range.
    ranged = await s3_api.get(
        f"/v1/tasks/{task_id}/result", headers={**headers, "Range": "bytes=100-70099"}
    )
    assert ranged.status_code == 206
    assert ranged.content == result.content[100:70100]

    listing = s3_client.list_objects_v2(Bucket=s3_bucket)
    keys = sorted(item.get("Key", "") for item in listing.get("Contents", []))
    results = [key for key in keys if key.startswith(f"{S3_PREFIX}/results/")]
    assert f"{S3_PREFIX}/sources/{task_id}" in keys
    assert len(results) == 1
    assert all(key.startswith(f"{S3_PREFIX}/") for key in keys)
    stored = s3_client.get_object(Bucket=s3_bucket, Key=results[0])["Body"].read()
    assert stored == result.content
    assert not (tmp_path / "data" / "files").exists()  # nothing went to local disk
