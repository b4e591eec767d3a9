"""A copy of everything an account holds, as one JSON document (`GET /v1/me/export`).

It is read in the caller's one read session (one transaction: a consistent picture), with one
statement per table whatever the account holds, and only the account's own rows (on
PostgreSQL, row-level security walls off everyone else's too). What it leaves out, and why, is
said in `pixelfleet.privacy.schemas`: nothing in it opens the account or signs for it."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncSession

from pixelfleet.accounts.api_key_schemas import ApiKeyOut
from pixelfleet.assets.schemas import AssetOut
from pixelfleet.credits.schemas import CreditEntryOut
from pixelfleet.db import utcnow
from pixelfleet.models import Task, User, WebhookDelivery
from pixelfleet.payments.schemas import PaymentOut
from pixelfleet.privacy.repository import AccountDataRepository
from pixelfleet.privacy.schemas import (
    AccountExport,
    ExportedOutput,
    ExportedPreset,
    ExportedProfile,
    ExportedTask,
    ExportedUpload,
    ExportedWebhookDelivery,
)


def _profile(user: User) -> ExportedProfile:
    return ExportedProfile(
        id=user.id,
        email=user.email,
        role="admin" if user.role == "admin" else "user",
        is_active=user.is_active,
        balance=user.balance,
        created_at=user.created_at,
        email_verified_at=user.email_verified_at,
        webhook_secret_rotated=user.webhook_secret_salt is not None,
    )


def _task(task: Task, deliveries: list[WebhookDelivery]) -> ExportedTask:
    outputs = [
        ExportedOutput(
            name=output.name,
            format=output.format,
            content_type=output.content_type,
            width=output.width,
            height=output.height,
            bytes=output.bytes,
            stored=output.key is not None,
            created_at=output.created_at,
        )
        for output in task.outputs
    ]
    own = set(ExportedTask.model_fields) - {"outputs", "webhook_deliveries"}
    return ExportedTask.model_validate(
        {
            **{name: getattr(task, name) for name in own},
            "outputs": outputs,
            "webhook_deliveries": [ExportedWebhookDelivery.model_validate(d) for d in deliveries],
        }
    )


async def export_account(session: AsyncSession, user: User) -> AccountExport:
    """Everything `user`'s account holds, read in `session`."""
    repo = AccountDataRepository.from_session(session)
    deliveries: defaultdict[object, list[WebhookDelivery]] = defaultdict(list)
    for delivery in await repo.webhook_deliveries(user.id):
        deliveries[delivery.task_id].append(delivery)
    return AccountExport(
        exported_at=utcnow(),
        profile=_profile(user),
        ledger=[CreditEntryOut.model_validate(e) for e in await repo.ledger(user.id)],
        payments=[PaymentOut.model_validate(p) for p in await repo.payments(user.id)],
        tasks=[_task(task, deliveries[task.id]) for task in await repo.tasks(user.id)],
        presets=[ExportedPreset.model_validate(p) for p in await repo.presets(user.id)],
        assets=[AssetOut.model_validate(a) for a in await repo.assets(user.id)],
        uploads=[ExportedUpload.model_validate(u) for u in await repo.uploads(user.id)],
        api_keys=[ApiKeyOut.model_validate(k) for k in await repo.api_keys(user.id)],
    )
