"""An S3-compatible server (moto) for the session, and a fresh bucket on it per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from pixelfleet.api.app import create_app
from pixelfleet.bootstrap import create_context
from pixelfleet.context import ProcessContext
from pixelfleet.storage.s3 import create_s3_client
from tests.conftest import TEST_JWT_SECRET
from tests.harness.s3 import MotoServer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_client(moto_server: MotoServer) -> S3Client:
    return create_s3_client(moto_server.settings())


@pytest.fixture
def s3_bucket(s3_client: S3Client) -> Iterator[str]:
    """A new, empty bucket; emptied and removed after the test."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    s3_client.create_bucket(Bucket=name)
    yield name
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", []) if "Key" in item]
        if keys:
            s3_client.delete_objects(Bucket=name, Delete={"Objects": keys})
    s3_client.delete_bucket(Bucket=name)


S3_PREFIX = "pixelfleet/test"
"""The key prefix of the storage URL of `s3_context`."""


@pytest.fixture
async def s3_context(
    database_url: str, tmp_path: Path, moto_server: MotoServer, s3_bucket: str
) -> AsyncIterator[ProcessContext]:
    """A process context whose files are in a fresh bucket (under `S3_PREFIX`)."""
    settings = moto_server.settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        jwt_secret=TEST_JWT_SECRET,
        storage_url=f"s3://{s3_bucket}/{S3_PREFIX}",
    )
    ctx = create_context(settings)
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.fixture
async def s3_api(s3_context: ProcessContext) -> AsyncIterator[httpx.AsyncClient]:
    """The API over `s3_context`."""
    transport = httpx.ASGITransport(app=create_app(ctx=s3_context))
    async with httpx.AsyncClient(transport=transport, base_url="http://pixelfleet.test") as http:
        yield http
