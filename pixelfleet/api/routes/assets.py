from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile, status

from pixelfleet.api.deps import ContextDep, ReadSessionDep, SessionDep, TaskReader, TaskWriter
from pixelfleet.api.problems import problem_responses
from pixelfleet.api.rate_limits import RATE_LIMITED, limit_asset_uploads
from pixelfleet.api.uploads import read_upload
from pixelfleet.assets import service as assets
from pixelfleet.assets.errors import AssetNotFound
from pixelfleet.assets.schemas import AssetOut, AssetPage
from pixelfleet.errors import QuotaExceeded
from pixelfleet.imaging.errors import ImageTooLarge, UnsupportedImage
from pixelfleet.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

router = APIRouter(prefix="/v1/assets", tags=["assets"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AssetOut,
    dependencies=[Depends(limit_asset_uploads)],
    responses={
        **RATE_LIMITED,
        **problem_responses(ImageTooLarge, UnsupportedImage, QuotaExceeded),
    },
)
async def upload_asset(
    user: TaskWriter,
    ctx: ContextDep,
    session: SessionDep,
    response: Response,
    file: Annotated[
        UploadFile,
        File(description="An image to reuse, e.g. as a watermark.", examples=["logo.png"]),
    ],
) -> AssetOut:
    """Upload an image once; pipelines name it by id (`{"op": "watermark", "asset": ID}`)."""
    data = await read_upload(file, ctx.settings.max_upload_bytes)
    asset = await assets.upload_asset(
        session, ctx.storage, user, data, ctx.settings.image_limits, ctx.settings.account_quotas
    )
    response.headers["Location"] = f"/v1/assets/{asset.id}"
    return AssetOut.model_validate(asset)


@router.get("", response_model=AssetPage)
async def list_assets(
    user: TaskReader,
    session: ReadSessionDep,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> AssetPage:
    return await assets.list_assets(session, user, cursor=cursor, limit=limit)


@router.get("/{asset_id}", response_model=AssetOut, responses=problem_responses(AssetNotFound))
async def get_asset(asset_id: uuid.UUID, user: TaskReader, session: ReadSessionDep) -> AssetOut:
    return AssetOut.model_validate(await assets.get_asset(session, user, asset_id))


@router.delete(
    "/{asset_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(AssetNotFound),
)
async def delete_asset(
    asset_id: uuid.UUID, user: TaskWriter, ctx: ContextDep, session: SessionDep
) -> Response:
    """Delete an asset. Queued tasks that use it will fail, and be refunded."""
    await assets.delete_asset(session, ctx.storage, user, asset_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
