"""Builds the storage adapter a storage URL names."""

from __future__ import annotations

from urllib.parse import urlsplit

from pixelfleet.settings import Settings
from pixelfleet.storage.base import Storage
from pixelfleet.storage.keys import is_valid_key
from pixelfleet.storage.local import LocalStorage

SUPPORTED_URLS = "file:///path, s3://bucket or s3://bucket/prefix"


def parse_s3_url(url: str) -> tuple[str, str]:
    """The bucket and key prefix (perhaps empty) of an `s3://bucket/prefix` URL."""
    parts = urlsplit(url)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if parts.scheme != "s3" or not bucket or parts.query or parts.fragment:
        raise ValueError(f"invalid S3 storage URL {url!r}: use s3://bucket or s3://bucket/prefix")
    if any(c in bucket for c in "@:") or (prefix and not is_valid_key(prefix)):
        raise ValueError(
            f"invalid S3 storage URL {url!r}: the bucket is a plain name and the prefix is "
            "slash-separated segments of letters, digits, '.', '_' and '-'"
        )
    return bucket, prefix


def create_storage(settings: Settings) -> Storage:
    url = settings.storage_url
    scheme = urlsplit(url).scheme if url else "file"
    if not url or scheme == "file":
        return LocalStorage(settings.storage_root)
    if scheme == "s3":
        # Imported here: boto3 takes a noticeable time to import, and only S3 processes need it.
        from pixelfleet.storage.s3 import S3Storage, create_s3_client

        bucket, prefix = parse_s3_url(url)
        return S3Storage(create_s3_client(settings), bucket, prefix)
    raise ValueError(f"unsupported storage URL {url!r}: use {SUPPORTED_URLS}")
