"""Reading an uploaded file, never more than the upload limit allows."""

from __future__ import annotations

from fastapi import UploadFile

from pixelfleet.imaging.errors import ImageTooLarge


async def read_upload(file: UploadFile, limit: int) -> bytes:
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLarge(f"Uploads are limited to {limit} bytes (max_upload_bytes).")
    return data
