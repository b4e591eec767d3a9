"""API keys: long-lived, scoped credentials for programs, stored hashed and shown once."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.accounts.api_key_repository import ApiKeyRepository
from pixelfleet.accounts.api_key_schemas import ApiKeyCreate, ApiKeyOut, ApiKeyPage
from pixelfleet.accounts.errors import ApiKeyNotFound, InvalidToken, TooManyApiKeys
from pixelfleet.models import ApiKey, User
from pixelfleet.pagination import decode_time_cursor, encode_time_cursor, page_of

KEY_PREFIX = "pfk_"
SHOWN_PREFIX_LENGTH = 12
MAX_USABLE_KEYS = 20
# A key's use is written down at most this often, so a busy key does not write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def looks_like_api_key(credential: str) -> bool:
    return credential.startswith(KEY_PREFIX)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


async def create_api_key(
    session: AsyncSession, user: User, request: ApiKeyCreate, now: datetime
) -> tuple[ApiKey, str]:
    """A new key and its only plain-text copy."""
    repo = ApiKeyRepository.from_session(session)
    if await repo.count_usable(user.id, now) >= MAX_USABLE_KEYS:
        raise TooManyApiKeys(
            f"This account already has {MAX_USABLE_KEYS} usable API keys; revoke one first."
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + timedelta(days=request.expires_in_days) if request.expires_in_days else None
    row = ApiKey(
        user_id=user.id,
        name=request.name,
        prefix=key[:SHOWN_PREFIX_LENGTH],
        key_hash=hash_key(key),
        scopes=sorted(request.scopes),
        created_at=now,
        expires_at=expires_at,
    )
    return await repo.add(row), key


async def list_api_keys(
    session: AsyncSession, user: User, *, cursor: str | None, limit: int
) -> ApiKeyPage:
    after = decode_time_cursor(cursor) if cursor else None
    rows = await ApiKeyRepository.from_session(session).page_for_user(
        user.id, after=after, limit=limit + 1
    )
    page = page_of(rows, limit, lambda key: encode_time_cursor(key.created_at, key.id))
    return ApiKeyPage(
        items=[ApiKeyOut.model_validate(key) for key in page.items],
        next_cursor=page.next_cursor,
    )


async def get_api_key(session: AsyncSession, user: User, key_id: uuid.UUID) -> ApiKey:
    key = await ApiKeyRepository.from_session(session).of_user(user.id, key_id)
    if key is None:
        raise ApiKeyNotFound(f"No API key {key_id} exists for this account.")
    return key


async def revoke_api_key(
    session: AsyncSession, user: User, key_id: uuid.UUID, now: datetime
) -> ApiKey:
    """Revokes the key at once (repeating it changes nothing)."""
    key = await get_api_key(session, user, key_id)
    await ApiKeyRepository.from_session(session).revoke(key.id, now)
    await session.refresh(key)
    return key


async def usable_key(session: AsyncSession, credential: str, now: datetime) -> ApiKey:
    """The stored key this credential is, if it still works; InvalidToken otherwise."""
    key = await ApiKeyRepository.from_session(session).by_hash(hash_key(credential))
    if key is None or key.revoked_at is not None:
        raise InvalidToken("The API key is invalid or has been revoked.")
    if key.expires_at is not None and key.expires_at <= now:
        raise InvalidToken("The API key has expired.")
    return key


def use_unrecorded(key: ApiKey, now: datetime) -> bool:
    """Whether a use of the key now should be written down: its last one was not recorded
    within LAST_USED_RESOLUTION (so a busy key writes about once a minute, not per request)."""
    return key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION


async def note_use(session: AsyncSession, key_id: uuid.UUID, now: datetime) -> bool:
    """Records that the key was used, unless that was recorded a moment ago (by a request
    racing this one, say). True if written."""
    return await ApiKeyRepository.from_session(session).mark_used(
        key_id, now, unless_since=now - LAST_USED_RESOLUTION
    )
