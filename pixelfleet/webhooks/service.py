"""Recording task events for their callback URL, and reading the deliveries back."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.db import utcnow
from pixelfleet.jobs.errors import TaskNotFound
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.jobs.schemas import TaskOut
from pixelfleet.jobs.states import CANCELLED, FAILED, SUCCEEDED
from pixelfleet.models import Task, User, WebhookDelivery
from pixelfleet.outbox_attempts import PENDING
from pixelfleet.pagination import decode_time_cursor, encode_time_cursor, page_of
from pixelfleet.settings import Settings
from pixelfleet.webhooks.repository import SigningSaltRepository, WebhookDeliveryRepository
from pixelfleet.webhooks.schemas import DeliveryOut, DeliveryPage, WebhookSecretOut
from pixelfleet.webhooks.signing import (
    SIGNATURE_HEADER,
    SIGNATURE_SCHEME,
    SigningSalts,
    new_salt,
    user_signing_secret,
)

TASK_EVENTS = {
    SUCCEEDED: "task.succeeded",
    FAILED: "task.failed",
    CANCELLED: "task.cancelled",
}

# What a task event tells about the task: the fields of the API's task document that describe
# its outcome, in the same shapes.
_TASK_FIELDS: Any = {
    "id": True,
    "status": True,
    "cost": True,
    "error": True,
    "finished_at": True,
    "links": True,
    "outputs": {"__all__": {"name", "format", "width", "height", "bytes"}},
}


def event_payload(delivery_id: uuid.UUID, event: str, task: Task) -> dict[str, Any]:
    document = TaskOut.from_task(task).model_dump(mode="json", include=_TASK_FIELDS)
    return {
        "id": str(delivery_id),
        "type": event,
        "created_at": utcnow().isoformat(),
        "data": {"task": document},
    }


async def record_task_event(session: AsyncSession, task: Task) -> None:
    """Queues the event of a finished task for its callback URL, in the caller's transaction.

    Call it right after the task's final state is written, with the task read after that
    (`jobs.settlement` does: the state changes are UPDATEs that leave loaded objects as they
    were). Recording an event twice is harmless: the second call finds the first and returns."""
    if not task.callback_url or task.status not in TASK_EVENTS:
        return
    event = TASK_EVENTS[task.status]
    repo = WebhookDeliveryRepository.from_session(session)
    if await repo.exists(task.id, event):
        return
    now = utcnow()
    delivery_id = uuid.uuid4()
    delivery = WebhookDelivery(
        id=delivery_id,
        task_id=task.id,
        event=event,
        url=task.callback_url,
        payload=event_payload(delivery_id, event, task),
        state=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    try:
        # A savepoint: losing a race with another recorder must not spoil the caller's work.
        async with session.begin_nested():
            await repo.add(delivery)
    except IntegrityError:
        if not await repo.exists(task.id, event):
            raise


async def list_deliveries(
    session: AsyncSession, user: User, task_id: uuid.UUID, cursor: str | None, limit: int
) -> DeliveryPage:
    """The deliveries of one of the user's tasks, newest first."""
    # Read through the repository, not the jobs service: that service settles tasks through
    # `jobs.settlement`, which records their events here.
    if await TaskRepository.from_session(session).get_for_user(task_id, user.id) is None:
        raise TaskNotFound(f"No task {task_id} exists for this account.")
    after = decode_time_cursor(cursor) if cursor else None
    rows = await WebhookDeliveryRepository.from_session(session).page_for_task(
        task_id, after=after, limit=limit + 1
    )
    page = page_of(rows, limit, lambda d: encode_time_cursor(d.created_at, d.id))
    return DeliveryPage(
        items=[DeliveryOut.model_validate(d) for d in page.items], next_cursor=page.next_cursor
    )


def _secret_out(settings: Settings, user_id: uuid.UUID, salts: SigningSalts) -> WebhookSecretOut:
    return WebhookSecretOut(
        secret=user_signing_secret(settings, user_id, salts.current),
        signature_header=SIGNATURE_HEADER,
        scheme=SIGNATURE_SCHEME,
        previous_secret_expires_at=(
            salts.previous_until if salts.previous_signs_at(utcnow()) else None
        ),
    )


def webhook_secret_of(settings: Settings, user: User) -> WebhookSecretOut:
    salts = SigningSalts(
        user.webhook_secret_salt,
        user.webhook_secret_previous_salt,
        user.webhook_secret_previous_until,
    )
    return _secret_out(settings, user.id, salts)


async def rotate_webhook_secret(
    session: AsyncSession, settings: Settings, user: User
) -> WebhookSecretOut:
    """Gives the account a new webhook secret. The one it replaces still signs, in a second
    `v1`, for `webhook_secret_grace_hours`; one rotated out before it stops signing now."""
    repo = SigningSaltRepository.from_session(session)
    # Locked: of two rotations at once, the second keeps the first one's secret as previous.
    salts = await repo.salts_of(user.id, lock=True)
    rotated = SigningSalts(
        current=new_salt(),
        previous=salts.current,
        previous_until=utcnow() + timedelta(hours=settings.webhook_secret_grace_hours),
    )
    await repo.replace(user.id, rotated)
    return _secret_out(settings, user.id, rotated)
