"""The process context: the resources (engine, sessions, Redis) and the ports (storage, dispatch,
webhook sending, mail, events, pipeline runs, payments) that the domain and the drivers use, as
one bag.

It names ports, never adapters: which adapter fills each port is decided in one place,
`pixelfleet/bootstrap.py`, which only the drivers (API, workers, operator, CLI) import."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pixelfleet.accounts.tokens import TokenSigner
from pixelfleet.background_sends import BackgroundSends
from pixelfleet.derivatives.urls import DeliveryKeys
from pixelfleet.events import EventChannel
from pixelfleet.jobs.pipeline_runs import PipelineRunner
from pixelfleet.jobs.result_urls import ResultUrls
from pixelfleet.launchers import DoorbellListener, Launcher
from pixelfleet.mail.senders import MailSender
from pixelfleet.payments.gateway import PaymentGateway
from pixelfleet.rate_limits.limiter import Limiter
from pixelfleet.settings import Settings
from pixelfleet.storage.base import Storage
from pixelfleet.webhooks.sender import WebhookSender


@dataclass
class ProcessContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    storage: Storage
    signer: TokenSigner = field(repr=False)
    # Signs and checks the URLs of results (`/v1/results/{token}`).
    result_urls: ResultUrls = field(repr=False)
    # Signs and checks derivative URLs (`/v1/images/{token}`) with each account's key.
    delivery_keys: DeliveryKeys = field(repr=False)
    launcher: Launcher
    webhooks: WebhookSender
    events: EventChannel
    # What runs pipelines (its child processes start on first use; a worker's only).
    pipelines: PipelineRunner
    # Mail to account holders: the port (an SMTP server, or .eml files), and the letters this
    # process is sending in the background (`mail.outbox`).
    mail_sender: MailSender
    mail: BackgroundSends
    redis: Redis | None = None
    # The payment provider, when its keys are configured.
    payments: PaymentGateway | None = None
    limiter: Limiter = field(default_factory=lambda: Limiter({}, None))
    # False when `pipelines` is borrowed from another context, which closes them.
    owns_pipelines: bool = True
    # An embedded worker's doorbell: what it hears when a task is queued, requeued or
    # cancelled. None where nobody rings (a Celery worker, the API).
    doorbell: DoorbellListener | None = None

    @property
    def retention(self) -> timedelta:
        return timedelta(hours=self.settings.result_ttl_hours)

    @property
    def refresh_ttl(self) -> timedelta:
        return timedelta(days=self.settings.refresh_token_days)

    async def close(self) -> None:
        if self.owns_pipelines:
            await self.pipelines.close()
        await self.webhooks.close()
        await self.mail.settle()
        await self.launcher.close()
        await self.events.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()
