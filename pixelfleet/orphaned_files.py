"""Stored files whose rows are gone (an erased account's sources, results, assets and uploads).
The transaction that deletes the rows notes the files; once it commits they are deleted, and
the upkeep deletes whatever that missed (the storage was away, the process stopped), so no
file outlives its rows for long. Deleting a file already gone is no error."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.context import ProcessContext
from pixelfleet.db import after_commit, unit_of_work
from pixelfleet.models import OrphanedFile

log = logging.getLogger(__name__)


async def delete_after_commit(session: AsyncSession, keys: Iterable[str]) -> None:
    """Notes `keys` in the session's transaction, and deletes the files once it commits
    (never if it rolls back: the rows would still name them)."""
    noted = sorted(set(keys))
    if not noted:
        return
    session.add_all(OrphanedFile(key=key) for key in noted)
    await session.flush()

    async def delete_now(ctx: ProcessContext) -> None:
        await delete_orphaned_files(ctx, noted)

    after_commit(session, delete_now)


async def delete_orphaned_files(ctx: ProcessContext, keys: list[str] | None = None) -> int:
    """Deletes the noted files (`keys` only, when given; else up to 500 of them) and forgets
    each one the storage let go. Returns how many it deleted; a failure is logged and the
    rest still go."""
    if keys is None:
        async with ctx.read_sessions() as session:
            keys = list(await session.scalars(select(OrphanedFile.key).limit(500)))
    deleted: list[str] = []
    for key in keys:
        try:
            await ctx.storage.delete(key)
        except Exception:
            log.warning("could not delete the orphaned file %s; the upkeep tries again", key)
            continue
        deleted.append(key)
    if deleted:
        async with unit_of_work(ctx) as session:
            await session.execute(delete(OrphanedFile).where(OrphanedFile.key.in_(deleted)))
    return len(deleted)
