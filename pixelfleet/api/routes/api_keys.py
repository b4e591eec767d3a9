from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from pixelfleet.accounts import api_keys
from pixelfleet.accounts.api_key_schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ApiKeyPage
from pixelfleet.accounts.errors import ApiKeyNotFound, TooManyApiKeys
from pixelfleet.api.deps import ReadSessionDep, SessionDep, SessionUser
from pixelfleet.api.problems import problem_responses
from pixelfleet.db import utcnow
from pixelfleet.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

router = APIRouter(prefix="/v1/me/api-keys", tags=["account"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=problem_responses(TooManyApiKeys),
)
async def create_api_key(
    body: ApiKeyCreate, user: SessionUser, session: SessionDep, response: Response
) -> ApiKeyCreated:
    """Create a key for a program. The answer holds the key itself, this once: store it in a
    secret. Send it as `Authorization: Bearer <key>`; it can do only what its scopes allow, and
    never manage keys, payments or the webhook secret. Needs a login, not an API key."""
    key, plain = await api_keys.create_api_key(session, user, body, utcnow())
    response.headers["Cache-Control"] = "no-store"
    response.headers["Location"] = f"/v1/me/api-keys/{key.id}"
    return ApiKeyCreated.model_validate(
        {**ApiKeyOut.model_validate(key).model_dump(), "key": plain}
    )


@router.get("", response_model=ApiKeyPage)
async def list_api_keys(
    user: SessionUser,
    session: ReadSessionDep,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> ApiKeyPage:
    """Your API keys, newest first, revoked ones included (never the keys themselves)."""
    return await api_keys.list_api_keys(session, user, cursor=cursor, limit=limit)


@router.get("/{key_id}", response_model=ApiKeyOut, responses=problem_responses(ApiKeyNotFound))
async def get_api_key(key_id: uuid.UUID, user: SessionUser, session: ReadSessionDep) -> ApiKeyOut:
    return ApiKeyOut.model_validate(await api_keys.get_api_key(session, user, key_id))


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(ApiKeyNotFound),
)
async def revoke_api_key(key_id: uuid.UUID, user: SessionUser, session: SessionDep) -> Response:
    """Revoke a key: it stops working at once. Revoking it again changes nothing."""
    await api_keys.revoke_api_key(session, user, key_id, utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
