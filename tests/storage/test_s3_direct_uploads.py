"""Direct uploads with S3 storage: the bytes go to the bucket on a presigned PUT, never through
the API, and are checked against the declaration when the upload is first used."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from pixelfleet.context import ProcessContext
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import PROBLEM, balance_of, image_bytes, sign_up
from tests.harness.s3 import MotoServer
from tests.storage.conftest import S3_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

IMAGE = image_bytes("JPEG", (320, 240))


async def _upload(
    s3_api: httpx.AsyncClient, headers: dict[str, str], size: int
) -> dict[str, Any]:
    response = await s3_api.post(
        "/v1/uploads", headers=headers, json={"content_type": "image/jpeg", "bytes": size}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_the_bytes_go_to_the_bucket_on_a_presigned_put(
    s3_api: httpx.AsyncClient,
    s3_context: ProcessContext,
    moto_server: MotoServer,
    s3_client: S3Client,
    s3_bucket: str,
) -> None:
    headers = await sign_up(s3_api, "s3-direct@example.com")
    target = await _upload(s3_api, headers, len(IMAGE))
    assert target["url"].startswith(f"{moto_server.endpoint_url}/{s3_bucket}/{S3_PREFIX}/uploads/")
    # Signed (version 4) with the declared type and length, for S3 to enforce.
    signed = parse_qs(urlsplit(target["url"]).query)["X-Amz-SignedHeaders"][0].split(";")
    assert {"content-length", "content-type", "host"} <= set(signed)
    async with httpx.AsyncClient() as s3:  # a browser or a script: no API in the path
        put = await s3.put(target["url"], headers=target["headers"], content=IMAGE)
    assert put.status_code == 200, put.text
    key = f"{S3_PREFIX}/uploads/{target['id']}"
    assert s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == IMAGE

    shown = await s3_api.get(f"/v1/uploads/{target['id']}", headers=headers)
    assert shown.json()["status"] == "received"
    task = await s3_api.post(
        "/v1/tasks",
        headers=headers,
        json={"source": {"upload": target["id"]}, "pipeline": {"operations": [{"op": "flip"}]}},
    )
    assert task.status_code == 202, task.text
    assert await drain_queue(s3_context) == ["succeeded"]
    source = f"{S3_PREFIX}/sources/{task.json()['id']}"
    assert s3_client.get_object(Bucket=s3_bucket, Key=source)["Body"].read() == IMAGE


async def test_bytes_put_unlike_the_declaration_are_refused_when_used(
    s3_api: httpx.AsyncClient, s3_context: ProcessContext
) -> None:
    headers = await sign_up(s3_api, "s3-forged@example.com")
    target = await _upload(s3_api, headers, len(IMAGE) - 100)
    async with httpx.AsyncClient() as s3:
        put = await s3.put(target["url"], headers=target["headers"], content=IMAGE)
    # S3 itself refuses a length other than the signed one; the server here does not check
    # signatures, like a PUT forged by any other means: the use of the upload catches it.
    assert put.status_code == 200
    body = {"source": {"upload": target["id"]}}
    task = await s3_api.post("/v1/tasks", headers=headers, json=body)
    assert task.status_code == 422, task.text
    assert task.headers["content-type"] == PROBLEM
    assert task.json()["type"].endswith("/upload-mismatch")
    assert await balance_of(s3_api, headers) == 100


async def test_the_console_may_send_its_uploads_to_the_bucket_and_show_its_images(
    s3_api: httpx.AsyncClient, s3_context: ProcessContext, moto_server: MotoServer
) -> None:
    policy = (await s3_api.get("/")).headers["content-security-policy"]
    [connect] = [part for part in policy.split("; ") if part.startswith("connect-src ")]
    [images] = [part for part in policy.split("; ") if part.startswith("img-src ")]
    assert moto_server.endpoint_url in connect.split()
    assert moto_server.endpoint_url in images.split()  # a result's redirect lands there
    # Results linked under a public address (a CDN) are images the page may show too.
    s3_context.settings.public_url = "https://img.example"
    policy = (await s3_api.get("/")).headers["content-security-policy"]
    [images] = [part for part in policy.split("; ") if part.startswith("img-src ")]
    assert "https://img.example" in images.split()
