"""Why a direct upload could not be created, received or used. Nothing is charged for any."""

from __future__ import annotations

from pixelfleet.errors import Conflict, Forbidden, NotFound, PixelFleetError


class UploadNotFound(NotFound):
    slug = "upload-not-found"
    title = "Upload not found"
    example_detail = "No upload 0b5a... exists for this account."


class UploadTokenInvalid(Forbidden):
    """The token of `PUT /v1/uploads/{id}/content` is missing, wrong, or for another upload."""

    slug = "upload-token-invalid"
    title = "Upload token invalid"
    example_detail = "The token does not grant this upload."


class UploadExpired(PixelFleetError):
    """The upload's time (`PIXELFLEET_UPLOAD_TTL_HOURS`) is over: its bytes can no longer be
    sent (as a source it is `source-expired`)."""

    status = 410
    slug = "upload-expired"
    title = "Upload expired"
    example_detail = "Upload 0b5a... expired at 2026-12-07T10:00:00Z."


class UploadAlreadyReceived(Conflict):
    """The upload's bytes were received already; an upload takes one image."""

    slug = "upload-already-received"
    title = "Upload already received"
    example_detail = "Upload 0b5a... has its bytes already: create a new upload for another image."


class UploadNotReceived(Conflict):
    """A task names an upload whose bytes were not sent (yet)."""

    slug = "upload-not-received"
    title = "Upload not received"
    example_detail = "Upload 0b5a... has no bytes yet: PUT them to its url first."


class UploadMismatch(PixelFleetError):
    """What was sent is not what was declared: another size, another content type, or bytes
    that are not an image of the declared type."""

    status = 422
    slug = "upload-mismatch"
    title = "Upload does not match its declaration"
    example_detail = "Upload 0b5a... declared 48213 bytes; 50000 were sent."
