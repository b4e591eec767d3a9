"""A new task's source from what is already stored: an earlier task's source, an asset, or a
direct upload. The image is copied into a staged object, which the new task stores as its own
source (each task's files end with its own retention time)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.assets import service as assets
from pixelfleet.db import utcnow
from pixelfleet.jobs.errors import TaskNotFound
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.models import Upload, User
from pixelfleet.sources.errors import SourceExpired
from pixelfleet.sources.schemas import AssetSource, StoredSource, UploadSource
from pixelfleet.storage import StagedObject, Storage, StoredObjectMissing
from pixelfleet.uploads import service as uploads


async def stored_image(session: AsyncSession, user: User, source: StoredSource) -> str | Upload:
    """Where the image `source` names is stored: its key, or the upload (whose bytes are
    checked when read). 404 for another user's (or no) task, asset or upload; 410
    (SourceExpired) once retention removed a task's source or an upload expired. Reads only."""
    if isinstance(source, AssetSource):
        return (await assets.get_asset(session, user, source.asset)).key
    if isinstance(source, UploadSource):
        return await uploads.usable_upload(session, user, source.upload)
    task = await TaskRepository.from_session(session).get_for_user(source.task, user.id)
    if task is None:
        raise TaskNotFound(f"No task {source.task} exists for this account.")
    if task.files_purged_at is not None or (
        task.expires_at is not None and task.expires_at <= utcnow()
    ):
        raise SourceExpired(f"The source of task {task.id} was removed with its task's files.")
    return task.source_key


async def staged_copy(storage: Storage, stored: str | Upload) -> StagedObject:
    """A staged copy of a stored image (SourceExpired if it is gone meanwhile)."""
    if isinstance(stored, Upload):
        data = await uploads.declared_bytes(storage, stored)
    else:
        try:
            data = await storage.get(stored)
        except StoredObjectMissing:
            raise SourceExpired("The stored source was removed with its files.") from None
    staged = storage.stage()
    staged.file.write(data)
    return staged
