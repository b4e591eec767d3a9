from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from pixelfleet.api.deps import ContextDep, ReadSessionDep, SessionDep, TaskReader, TaskWriter
from pixelfleet.api.problems import problem_responses
from pixelfleet.api.rate_limits import RATE_LIMITED, limit_preset_writes
from pixelfleet.errors import QuotaExceeded
from pixelfleet.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from pixelfleet.presets import service as presets
from pixelfleet.presets.errors import PresetExists, PresetNotFound
from pixelfleet.presets.schemas import PresetBody, PresetIn, PresetName, PresetOut, PresetPage

router = APIRouter(prefix="/v1/presets", tags=["presets"])

NamePath = Annotated[PresetName, Path(description="The preset's name.")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PresetOut,
    dependencies=[Depends(limit_preset_writes)],
    responses={**RATE_LIMITED, **problem_responses(PresetExists, QuotaExceeded)},
)
async def create_preset(
    body: PresetIn, user: TaskWriter, ctx: ContextDep, session: SessionDep, response: Response
) -> PresetOut:
    """Save a pipeline under a name; submit it later as `{"preset": NAME}`."""
    preset = await presets.create_preset(
        session,
        user,
        body.name,
        body.pipeline,
        ctx.settings.image_limits,
        ctx.settings.account_quotas,
    )
    response.headers["Location"] = f"/v1/presets/{preset.name}"
    return PresetOut.model_validate(preset)


@router.get("", response_model=PresetPage)
async def list_presets(
    user: TaskReader,
    session: ReadSessionDep,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> PresetPage:
    """The caller's presets, by name."""
    return await presets.list_presets(session, user, cursor=cursor, limit=limit)


@router.get("/{name}", response_model=PresetOut, responses=problem_responses(PresetNotFound))
async def get_preset(name: NamePath, user: TaskReader, session: ReadSessionDep) -> PresetOut:
    return PresetOut.model_validate(await presets.get_preset(session, user, name))


@router.put(
    "/{name}",
    response_model=PresetOut,
    dependencies=[Depends(limit_preset_writes)],
    responses={
        200: {"description": "The preset's pipeline was replaced."},
        201: {"model": PresetOut, "description": "The preset was created."},
        **RATE_LIMITED,
        **problem_responses(QuotaExceeded),
    },
)
async def replace_preset(
    name: NamePath,
    body: PresetBody,
    user: TaskWriter,
    ctx: ContextDep,
    session: SessionDep,
    response: Response,
) -> PresetOut:
    """Create the preset, or replace its pipeline."""
    preset, created = await presets.replace_preset(
        session, user, name, body.pipeline, ctx.settings.image_limits, ctx.settings.account_quotas
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
    return PresetOut.model_validate(preset)


@router.delete(
    "/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(PresetNotFound)
)
async def delete_preset(name: NamePath, user: TaskWriter, session: SessionDep) -> Response:
    await presets.delete_preset(session, user, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
