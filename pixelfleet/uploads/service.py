"""Direct uploads: created with a declared type and size, their bytes sent to storage (or to the
API where the storage takes no presigned PUT), then named as a task's source until they expire.

The declaration is held to at every step it can be: a presigned S3 PUT signs the type and the
length; the API's own PUT refuses another type or size as the bytes arrive; and when an upload
is first used its size and its header's signature are checked again (a forged PUT to storage is
refused there)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.db import utcnow
from pixelfleet.errors import FieldError
from pixelfleet.imaging.errors import ImageTooLarge
from pixelfleet.imaging.source_formats import content_type_by_signature, source_format_named
from pixelfleet.models import Upload, User
from pixelfleet.sources.errors import SourceExpired
from pixelfleet.storage import PresignedPut, Storage, StoredObjectMissing
from pixelfleet.uploads.errors import (
    UploadAlreadyReceived,
    UploadExpired,
    UploadMismatch,
    UploadNotFound,
    UploadNotReceived,
    UploadTokenInvalid,
)
from pixelfleet.uploads.repository import UploadRepository
from pixelfleet.uploads.schemas import UploadStatus

TOKEN_BYTES = 32


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewUpload:
    upload: Upload
    token: str
    """The credential of the API's own PUT (`PUT /v1/uploads/{id}/content?token=`)."""
    presigned: PresignedPut | None
    """Where the storage takes the bytes itself (None: at the API, with `token`)."""


async def create_upload(
    session: AsyncSession,
    storage: Storage,
    user: User,
    content_type: str,
    size: int,
    *,
    max_bytes: int,
    lifetime: timedelta,
) -> NewUpload:
    if size > max_bytes:
        raise ImageTooLarge(
            f"An upload may have at most {max_bytes} bytes (max_upload_bytes); "
            f"{size} were declared.",
            errors=[FieldError("bytes", f"must be at most {max_bytes}")],
        )
    upload_id = uuid.uuid4()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    upload = Upload(
        id=upload_id,
        user_id=user.id,
        key=f"uploads/{upload_id}",
        content_type=content_type,
        bytes=size,
        token_hash=_token_hash(token),
        created_at=now,
        expires_at=now + lifetime,
    )
    presigned = storage.presigned_put(upload.key, content_type, size, int(lifetime.total_seconds()))
    await UploadRepository.from_session(session).add(upload)
    return NewUpload(upload, token, presigned)


async def get_upload(session: AsyncSession, user: User, upload_id: uuid.UUID) -> Upload:
    upload = await UploadRepository.from_session(session).get_for_user(upload_id, user.id)
    if upload is None:
        raise UploadNotFound(f"No upload {upload_id} exists for this account.")
    return upload


def _expired(upload: Upload, now: datetime) -> bool:
    return upload.purged_at is not None or upload.expires_at <= now


async def upload_status(storage: Storage, upload: Upload) -> UploadStatus:
    """Where the upload stands. Bytes PUT to storage directly are seen by asking the storage."""
    if _expired(upload, utcnow()):
        return "expired"
    if upload.received_at is not None or await storage.exists(upload.key):
        return "received"
    return "waiting"


async def upload_to_receive(
    session: AsyncSession, upload_id: uuid.UUID, token: str, content_type: str
) -> Upload:
    """The upload a `PUT .../content?token=` may send the bytes of (reads only)."""
    upload = await UploadRepository.from_session(session).get(upload_id)
    if upload is None or not hmac.compare_digest(upload.token_hash, _token_hash(token)):
        raise UploadTokenInvalid("The token does not grant this upload.")
    if _expired(upload, utcnow()):
        raise UploadExpired(f"Upload {upload.id} expired at {upload.expires_at.isoformat()}.")
    if upload.received_at is not None:
        raise UploadAlreadyReceived(
            f"Upload {upload.id} has its bytes already: create a new upload for another image."
        )
    if content_type != upload.content_type:
        raise UploadMismatch(
            f"Upload {upload.id} was declared {upload.content_type}; "
            f"the body is {content_type or 'of no type'}.",
            errors=[FieldError("Content-Type", f"must be {upload.content_type}")],
        )
    return upload


def _size_mismatch(upload: Upload, sent: str) -> UploadMismatch:
    return UploadMismatch(
        f"Upload {upload.id} declared {upload.bytes} bytes; {sent} sent.",
        errors=[FieldError("body", f"must be exactly {upload.bytes} bytes")],
    )


async def receive_bytes(storage: Storage, upload: Upload, chunks: AsyncIterable[bytes]) -> None:
    """Writes the body into storage as it arrives, exactly the declared number of bytes (a
    longer body is refused at the first byte too many); anything refused leaves nothing."""
    staged = storage.stage()
    try:
        received = 0
        async for chunk in chunks:
            received += len(chunk)
            if received > upload.bytes:
                raise _size_mismatch(upload, "more were")
            staged.file.write(chunk)
        if received != upload.bytes:
            raise _size_mismatch(upload, f"{received} were")
        await staged.store(upload.key)
    finally:
        staged.discard()


async def mark_received(session: AsyncSession, upload: Upload) -> None:
    if not await UploadRepository.from_session(session).mark_received(upload.id, utcnow()):
        raise UploadAlreadyReceived(f"Upload {upload.id} received its bytes meanwhile.")


async def usable_upload(session: AsyncSession, user: User, upload_id: uuid.UUID) -> Upload:
    """The caller's upload, named as a source: 404 for another user's, 410 once expired."""
    upload = await get_upload(session, user, upload_id)
    if _expired(upload, utcnow()):
        raise SourceExpired(f"Upload {upload.id} expired at {upload.expires_at.isoformat()}.")
    return upload


async def declared_bytes(storage: Storage, upload: Upload) -> bytes:
    """The upload's bytes, once they are checked to be what was declared."""
    try:
        data = await storage.get(upload.key)
    except StoredObjectMissing:
        raise UploadNotReceived(
            f"Upload {upload.id} has no bytes yet: PUT them to its url first."
        ) from None
    if len(data) != upload.bytes:
        raise _size_mismatch(upload, f"{len(data)} were")
    found = content_type_by_signature(data)
    if found is None or source_format_named(found) != source_format_named(upload.content_type):
        raise UploadMismatch(
            f"Upload {upload.id} was declared {upload.content_type}; its bytes are "
            f"{found or 'not an image of an accepted type'}."
        )
    return data


async def purge_expired(session: AsyncSession, storage: Storage, *, batch: int = 200) -> int:
    """Deletes the bytes of uploads past their time (the row stays, to answer 410)."""
    now = utcnow()
    repo = UploadRepository.from_session(session)
    expired = await repo.expired_unpurged(now, batch)
    for upload in expired:
        await storage.delete(upload.key)
        await repo.mark_purged(upload.id, now)
    return len(expired)
