"""A submission's image, whatever its source names, staged for the task (or quote) to use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.models import User
from pixelfleet.outbound import outbound_client
from pixelfleet.settings import Settings
from pixelfleet.sources.fetch import fetch_source
from pixelfleet.sources.schemas import Source, UrlSource
from pixelfleet.sources.stored import staged_copy, stored_image
from pixelfleet.storage import StagedObject, Storage


async def staged_source(
    storage: Storage,
    settings: Settings,
    user: User,
    source: Source,
    *,
    reads: Callable[[], AsyncSession],
    end_reads: Callable[[], Awaitable[None]],
) -> StagedObject:
    """The image `source` names, staged: fetched (a URL) or copied (a stored image). A stored
    one is looked up in the caller's read session (`reads`), which `end_reads` closes before
    the image is copied: on SQLite no lock is held while bytes move."""
    if isinstance(source, UrlSource):
        staged = storage.stage()
        try:
            async with outbound_client(settings.source_fetch_timeout_seconds) as http:
                await fetch_source(
                    http,
                    source.url,
                    staged,
                    limit=settings.max_upload_bytes,
                    within=settings.source_fetch_timeout_seconds,
                    allow_private=settings.source_allow_private_urls,
                )
        except BaseException:
            staged.discard()
            raise
        return staged
    try:
        stored = await stored_image(reads(), user, source)
    finally:
        await end_reads()
    return await staged_copy(storage, stored)
