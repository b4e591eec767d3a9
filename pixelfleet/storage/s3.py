"""Storage in an S3 bucket (or an S3-compatible server), under a key prefix.

boto3 is synchronous; its clients are thread-safe, so each call runs in a worker thread. This
module imports boto3 (slow to import): only `create_storage` imports it, and only for `s3://`."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, BinaryIO, cast

from boto3.session import Session
from botocore.config import Config
from botocore.exceptions import ClientError

from pixelfleet.settings import Settings
from pixelfleet.storage.base import PresignedAnswer, PresignedPut, StoredObjectMissing
from pixelfleet.storage.keys import check_key, is_valid_key

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client

# What S3 answers for an absent key: GetObject says NoSuchKey; HeadObject has no body, so only
# its status. NoSuchBucket is deliberately absent: a missing bucket is misconfiguration.
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def _names_a_missing_object(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _MISSING_CODES


STAGED_IN_MEMORY_BYTES = 8 * 1024 * 1024
"""A staged object is kept in memory up to this size, then in a temporary file."""


class S3Staged:
    """A staged object: spooled locally, sent to the bucket in one PUT by `store`."""

    def __init__(self, storage: S3Storage) -> None:
        self._storage = storage
        self.file: BinaryIO = cast(
            "BinaryIO",
            tempfile.SpooledTemporaryFile(max_size=STAGED_IN_MEMORY_BYTES),  # noqa: SIM115 (closed by discard)
        )
        self._open = True

    def read(self) -> bytes:
        self.file.seek(0)
        return self.file.read()

    async def store(self, key: str) -> None:
        if not self._open:
            raise ValueError("this staged object was stored or discarded already")
        name = self._storage.object_key(key)
        self.file.seek(0)
        storage = self._storage
        await asyncio.to_thread(
            storage.client.put_object, Bucket=storage.bucket, Key=name, Body=self.file
        )
        self.discard()

    def discard(self) -> None:
        self.file.close()
        self._open = False


class S3Storage:
    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        prefix = prefix.strip("/")
        if not bucket:
            raise ValueError("an S3 bucket name is required")
        if prefix and not is_valid_key(prefix):
            raise ValueError(f"invalid S3 key prefix {prefix!r}")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def object_key(self, key: str) -> str:
        """The S3 key of a storage key: the prefix, a slash, then the key."""
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _open(self, key: str, byte_range: str | None = None) -> StreamingBody:
        try:
            name = self.object_key(key)
            response = (
                self.client.get_object(Bucket=self.bucket, Key=name, Range=byte_range)
                if byte_range
                else self.client.get_object(Bucket=self.bucket, Key=name)
            )
        except ClientError as exc:
            if _names_a_missing_object(exc):
                raise StoredObjectMissing(key) from exc
            raise
        return response["Body"]

    def _read(self, key: str) -> bytes:
        body = self._open(key)
        with contextlib.closing(body):
            return body.read()

    def _exists(self, key: str) -> bool:
        # A bare 404 cannot tell a missing bucket from a missing key; get and put can, and do.
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _names_a_missing_object(exc):
                return False
            raise
        return True

    async def put(self, key: str, data: bytes) -> None:
        name = self.object_key(key)
        await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=name, Body=data)

    def stage(self) -> S3Staged:
        return S3Staged(self)

    def presigned_put(
        self, key: str, content_type: str, size: int, expires_in_seconds: int
    ) -> PresignedPut:
        # Signed locally (no request is made). The type and the length are signed headers, so
        # S3 refuses a PUT of another type or size; the API checks both again when it is used.
        url = self.client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.object_key(key),
                "ContentType": content_type,
                "ContentLength": size,
            },
            ExpiresIn=expires_in_seconds,
            HttpMethod="PUT",
        )
        return PresignedPut(url=url, headers={"Content-Type": content_type})

    def presigned_get(self, key: str, expires_in_seconds: int, answer: PresignedAnswer) -> str:
        # Signed locally. S3 answers it with these headers (its `response-*` overrides, which
        # only a signed request may use) and with its own validators and ranges.
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.object_key(key),
                "ResponseContentType": answer.content_type,
                "ResponseContentDisposition": answer.content_disposition,
                "ResponseCacheControl": answer.cache_control,
            },
            ExpiresIn=expires_in_seconds,
            HttpMethod="GET",
        )

    async def get(self, key: str) -> bytes:
        self.object_key(key)  # refuse a bad key before taking a thread
        return await asyncio.to_thread(self._read, key)

    def local_path(self, key: str) -> None:
        self.object_key(key)  # a bad key is refused here as everywhere
        return None

    async def open_stream(
        self, key: str, chunk_size: int = 64 * 1024, *, start: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        self.object_key(key)
        byte_range = None  # S3's own Range header (a length of at least one byte)
        if start or length is not None:
            end = "" if length is None else str(start + length - 1)
            byte_range = f"bytes={start}-{end}"
        body = await asyncio.to_thread(self._open, key, byte_range)

        async def chunks() -> AsyncIterator[bytes]:
            # The body is read as it is sent on, so a large result never sits whole in memory.
            try:
                while chunk := await asyncio.to_thread(body.read, chunk_size):
                    yield chunk
            finally:
                body.close()

        return chunks()

    async def delete(self, key: str) -> None:
        # DeleteObject succeeds for an absent key, so deleting twice is fine.
        name = self.object_key(key)
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=name)

    async def exists(self, key: str) -> bool:
        self.object_key(key)
        return await asyncio.to_thread(self._exists, key)


def create_s3_client(settings: Settings) -> S3Client:
    """An S3 client for the configured endpoint and region. Credentials come from settings when
    both halves are set, else from boto3's usual sources (AWS_* variables, profiles, roles)."""
    key_id = settings.s3_access_key_id
    secret = (
        settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
    )
    if bool(key_id) != bool(secret):
        raise ValueError(
            "set both PIXELFLEET_S3_ACCESS_KEY_ID and PIXELFLEET_S3_SECRET_ACCESS_KEY, or neither"
        )
    config = Config(
        connect_timeout=5,
        read_timeout=30,
        retries={"mode": "standard", "max_attempts": 5},
        # Calls run in `asyncio.to_thread`, whose pool has up to 32 threads: one connection each
        # (botocore keeps 10 by default and would reconnect for the others).
        max_pool_connections=32,
        # S3-compatible servers (MinIO, Ceph, moto) are reached by address, which
        # virtual-hosted bucket names (bucket.host) would not resolve to.
        s3={"addressing_style": "path"} if settings.s3_endpoint_url else None,
        # Signature version 4 everywhere, presigned URLs included (botocore may presign with
        # the deprecated version 2 for some endpoints, which signs no Content-Length).
        signature_version="s3v4",
    )
    # A session of its own: boto3's default session is not safe to share between threads.
    return Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint_url or None,
        region_name=settings.s3_region or None,
        aws_access_key_id=key_id or None,
        aws_secret_access_key=secret or None,
        config=config,
    )
