"""`/v1/uploads`: direct uploads, whose bytes are sent before the task that names them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from pixelfleet.api.deps import (
    ContextDep,
    ReadSessionDep,
    RequestSessionsDep,
    SessionDep,
    TaskReader,
    TaskWriter,
)
from pixelfleet.api.problems import problem_responses
from pixelfleet.api.rate_limits import RATE_LIMITED, limit_task_submission
from pixelfleet.imaging.errors import ImageTooLarge
from pixelfleet.uploads import service as uploads
from pixelfleet.uploads.errors import (
    UploadAlreadyReceived,
    UploadExpired,
    UploadMismatch,
    UploadNotFound,
    UploadTokenInvalid,
)
from pixelfleet.uploads.schemas import UPLOAD_CONTENT_TYPES, UploadIn, UploadOut, UploadTarget

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])

CONTENT_ROUTE = "put_upload_content"


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadTarget,
    # An upload is the first half of a submission: it counts as one.
    dependencies=[Depends(limit_task_submission)],
    responses={**RATE_LIMITED, **problem_responses(ImageTooLarge)},
)
async def create_upload(
    body: UploadIn,
    request: Request,
    response: Response,
    user: TaskWriter,
    ctx: ContextDep,
    session: SessionDep,
) -> UploadTarget:
    """Where to send an image's bytes (`method`, `url`, `headers`) before naming it as a
    task's source, `{"source": {"upload": ID}}`, until `expires_at`. With S3 storage the bytes
    go to the bucket itself; with local storage, to this API. Exactly the declared number of
    bytes, of the declared type, is accepted."""
    new = await uploads.create_upload(
        session,
        ctx.storage,
        user,
        body.content_type,
        body.bytes,
        max_bytes=ctx.settings.max_upload_bytes,
        lifetime=timedelta(hours=ctx.settings.upload_ttl_hours),
    )
    upload = new.upload
    if new.presigned is not None:
        url, headers = new.presigned.url, dict(new.presigned.headers)
    else:
        content = request.url_for(CONTENT_ROUTE, upload_id=str(upload.id))
        url = str(content.include_query_params(token=new.token))
        headers = {"Content-Type": upload.content_type}
    response.headers["Location"] = f"/v1/uploads/{upload.id}"
    return UploadTarget(id=upload.id, url=url, headers=headers, expires_at=upload.expires_at)


@router.get("/{upload_id}", response_model=UploadOut, responses=problem_responses(UploadNotFound))
async def get_upload(
    upload_id: uuid.UUID, user: TaskReader, ctx: ContextDep, session: ReadSessionDep
) -> UploadOut:
    upload = await uploads.get_upload(session, user, upload_id)
    state = await uploads.upload_status(ctx.storage, upload)
    return UploadOut(
        id=upload.id,
        content_type=upload.content_type,
        bytes=upload.bytes,
        status=state,
        created_at=upload.created_at,
        expires_at=upload.expires_at,
    )


@router.put(
    "/{upload_id}/content",
    name=CONTENT_ROUTE,
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(
        UploadTokenInvalid, UploadExpired, UploadAlreadyReceived, UploadMismatch
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            # The declared type: one of the image types an upload may have.
            "content": {
                content_type: {
                    "schema": {"type": "string", "format": "binary"},
                    "example": "(the image's bytes)",
                }
                for content_type in UPLOAD_CONTENT_TYPES
            },
        }
    },
)
async def put_upload_content(
    upload_id: uuid.UUID,
    request: Request,
    ctx: ContextDep,
    sessions: RequestSessionsDep,
    session: SessionDep,
    token: Annotated[str, Query(max_length=128, description="The token of the upload's url.")],
    content_type: Annotated[str, Header(alias="Content-Type")] = "",
) -> Response:
    """The bytes of an upload made with local storage (the URL `POST /v1/uploads` gave; its
    token is the credential). The body must be exactly the declared bytes, of the declared
    `Content-Type`; nothing is kept of a refused or cut-off body."""
    try:
        upload = await uploads.upload_to_receive(sessions.reads(), upload_id, token, content_type)
    finally:
        await sessions.end_reads()  # no transaction is open while the bytes arrive
    await uploads.receive_bytes(ctx.storage, upload, request.stream())
    await uploads.mark_received(session, upload)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
