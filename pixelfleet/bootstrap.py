"""The composition root: builds a process's context from its settings, choosing the adapter of
every port (database engine and sessions, storage, the event channel, the launcher and the
webhook sender, the Kubernetes client, the Celery app, payments, rate limits, the pipeline
processes, the embedded workers' doorbell).

Only the drivers import this module (the API's app factory, the workers, the operator, the
command line, the tests' harness); everything else takes the context it is given. The
Kubernetes client and the Celery app are made here once per process: the operator's handlers
use the very ones its context's launcher dispatches with."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from pixelfleet.accounts.tokens import TokenSigner
from pixelfleet.background_sends import BackgroundSends
from pixelfleet.context import ProcessContext
from pixelfleet.db import create_engine, create_read_session_factory, create_session_factory
from pixelfleet.derivatives.urls import DeliveryKeys
from pixelfleet.events import EventChannel, NoEvents
from pixelfleet.events.redis_stream import RedisEventStream
from pixelfleet.jobs.pipeline_processes import PipelineProcesses
from pixelfleet.jobs.result_urls import ResultUrls
from pixelfleet.launchers import Doorbell, DoorbellListener, EmbeddedLauncher, Launcher
from pixelfleet.launchers.doorbells import (
    DatagramDoorbell,
    DatagramListener,
    NoDoorbell,
    NoDoorbellListener,
    PostgresDoorbell,
    PostgresListener,
)
from pixelfleet.local_datagrams import local_datagrams_supported
from pixelfleet.mail.outbox import send_due_mail
from pixelfleet.mail.senders import FileMailSender, MailSender, SmtpMailSender
from pixelfleet.observability import known_series
from pixelfleet.payments.gateway import PaymentGateway
from pixelfleet.postgres_notifications import asyncpg_dsn
from pixelfleet.rate_limits.limiter import Limiter, RateStore, rules_from
from pixelfleet.rate_limits.stores import MemoryRateStore, RedisRateStore
from pixelfleet.settings import Settings
from pixelfleet.storage.factory import create_storage
from pixelfleet.webhooks.delivery import deliver_due
from pixelfleet.webhooks.sender import BackgroundWebhookSender, WebhookSender

if TYPE_CHECKING:
    from celery import Celery

    from pixelfleet.launchers.celery import CeleryLauncher
    from pixelfleet.operator.cluster import ImageJobs
    from pixelfleet.operator.state import OperatorState


@dataclass(frozen=True)
class Dispatch:
    """How this process hands work out: the launcher and the webhook sender (None: webhooks are
    sent in the background from this process), and the Celery and Kubernetes adapters they are
    made of, where the mode has them."""

    launcher: Launcher
    webhooks: WebhookSender | None = None
    celery: CeleryLauncher | None = None
    imagejobs: ImageJobs | None = None


def create_dispatch(
    settings: Settings,
    *,
    in_cluster: bool = False,
    celery_app: Celery | None = None,
    engine: AsyncEngine | None = None,
) -> Dispatch:
    """The launcher the settings name (`in_cluster`: the kubernetes one whatever they name, as
    the operator needs). A Celery worker passes its own `celery_app` (which it closes itself),
    so that it sends with the app it runs. The embedded launcher rings its workers' doorbell
    (on PostgreSQL through `engine`, the process's). Celery and the Kubernetes client are
    imported only by the modes that use them."""
    if settings.launcher == "embedded" and not in_cluster:
        return Dispatch(EmbeddedLauncher(create_doorbell(settings, engine)))
    from pixelfleet.launchers.celery import CeleryLauncher, CeleryWebhookSender

    if celery_app is None:
        from pixelfleet.worker.celery_config import create_celery

        celery = CeleryLauncher(create_celery(settings), settings.celery_queue)
    else:
        celery = CeleryLauncher(celery_app, settings.celery_queue, owns_app=False)
    webhooks = CeleryWebhookSender(celery.app, celery.queue)
    if settings.launcher == "celery" and not in_cluster:
        return Dispatch(celery, webhooks, celery)
    from pixelfleet.launchers.kubernetes import KubernetesLauncher
    from pixelfleet.operator.cluster import ImageJobs, load_api_client

    imagejobs = ImageJobs(load_api_client(), settings.resolved_kubernetes_namespace)
    # The operator (`in_cluster`) only sends: the API makes the ImageJobs.
    launcher = KubernetesLauncher(
        imagejobs, celery, settings.imagejob_ttl_seconds, mirrors=not in_cluster
    )
    return Dispatch(launcher, webhooks, celery, imagejobs)


def create_context(
    settings: Settings,
    *,
    pipelines: PipelineProcesses | None = None,
    dispatch: Dispatch | None = None,
    celery_app: Celery | None = None,
) -> ProcessContext:
    """The context of a process. `pipelines` shares another context's pipeline processes
    (whose owner closes them) instead of starting this context's own; `dispatch` is made from
    the settings unless given (with the worker's own `celery_app`, where it has one)."""
    engine = create_engine(settings.resolved_database_url)
    dispatch = dispatch or create_dispatch(settings, celery_app=celery_app, engine=engine)
    redis_url = settings.resolved_redis_url
    redis = (
        Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=15)
        if redis_url
        else None
    )
    events = _event_channel(settings, engine, redis)

    # Sending in this process needs the context it is part of: `context` is bound below,
    # before anything can send.
    def send_due(task_id: uuid.UUID) -> Awaitable[int]:
        return deliver_due(context, task_id=task_id)

    def send_letter(mail_id: uuid.UUID) -> Awaitable[int]:
        return send_due_mail(context, mail_id=mail_id)

    known_series.declare()  # the first scrape of this process has every known series, at 0
    context = ProcessContext(
        settings=settings,
        engine=engine,
        sessions=create_session_factory(engine),
        read_sessions=create_read_session_factory(engine),
        storage=create_storage(settings),
        signer=TokenSigner(
            key=settings.jwt_signing_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            access_ttl=timedelta(minutes=settings.access_token_minutes),
        ),
        result_urls=ResultUrls(settings),
        delivery_keys=DeliveryKeys(settings),
        launcher=dispatch.launcher,
        webhooks=dispatch.webhooks or BackgroundWebhookSender(send_due),
        events=events,
        redis=redis,
        payments=_payment_gateway(settings),
        limiter=_limiter(settings, redis),
        pipelines=pipelines or PipelineProcesses(),
        owns_pipelines=pipelines is None,
        mail_sender=create_mail_sender(settings),
        mail=BackgroundSends(send_letter, "mail"),
    )
    return context


def create_mail_sender(settings: Settings) -> MailSender:
    """The SMTP server of `PIXELFLEET_SMTP_URL`, or .eml files under `<data dir>/mail/`."""
    if settings.smtp_url is None:
        return FileMailSender(settings.data_dir / "mail")
    return SmtpMailSender(
        settings.smtp_url.get_secret_value(), settings.smtp_timeout_seconds, settings.smtp_ca_file
    )


def _on_postgresql(settings: Settings) -> bool:
    """Whether the queue is on PostgreSQL (rung through the database itself) rather than in a
    SQLite file of this machine (rung through local datagrams)."""
    return make_url(settings.resolved_database_url).get_backend_name() != "sqlite"


def create_doorbell(settings: Settings, engine: AsyncEngine | None) -> Doorbell:
    """What rings the embedded workers when a task is queued (see `launchers.doorbells`)."""
    if _on_postgresql(settings):
        return PostgresDoorbell(engine) if engine is not None else NoDoorbell()
    if local_datagrams_supported():
        return DatagramDoorbell(
            settings.resolved_database_url, settings.jwt_signing_key, settings.embedded_workers
        )
    return NoDoorbell()


def create_doorbell_listener(settings: Settings, index: int) -> DoorbellListener:
    """What embedded worker `index` listens to for queued tasks."""
    if _on_postgresql(settings):
        return PostgresListener(asyncpg_dsn(settings.resolved_database_url))
    if local_datagrams_supported():
        return DatagramListener(
            settings.resolved_database_url,
            settings.jwt_signing_key,
            index,
            settings.embedded_workers,
        )
    return NoDoorbellListener()


def create_operator_state(settings: Settings) -> OperatorState:
    """The operator's context and what its handlers share: the ImageJobs client and the Celery
    sender are the very ones the context's launcher is made of (one Kubernetes client and one
    Celery app in the process, closed with the context)."""
    from pixelfleet.operator.cluster import CreditBindings
    from pixelfleet.operator.state import OperatorState

    dispatch = create_dispatch(settings, in_cluster=True)
    assert dispatch.imagejobs is not None
    assert dispatch.celery is not None
    return OperatorState(
        ctx=create_context(settings, dispatch=dispatch),
        jobs=dispatch.imagejobs,
        celery=dispatch.celery,
        bindings=CreditBindings(dispatch.imagejobs.api_client),
    )


def _event_channel(settings: Settings, engine: AsyncEngine, redis: Redis | None) -> EventChannel:
    """Redis's stream where there is Redis; otherwise (the embedded mode) PostgreSQL's
    notifications, which reach every machine sharing the database, or a local socket for the
    processes of one machine on SQLite."""
    if redis is not None:
        return RedisEventStream(redis, settings.events_stream_max_length)
    database_url = settings.resolved_database_url
    if _on_postgresql(settings):
        from pixelfleet.events.postgres_notify import PostgresNotifyEvents

        return PostgresNotifyEvents(engine, asyncpg_dsn(database_url))
    if not local_datagrams_supported():
        return NoEvents()
    from pixelfleet.events.local_socket import LocalSocketEvents, channel_addresses

    return LocalSocketEvents(channel_addresses(database_url, settings.jwt_signing_key))


def _limiter(settings: Settings, redis: Redis | None) -> Limiter:
    if not settings.rate_limits_enabled:
        return Limiter(rules_from(settings), None)
    store: RateStore = RedisRateStore(redis) if redis else MemoryRateStore()
    return Limiter(rules_from(settings), store)


def _payment_gateway(settings: Settings) -> PaymentGateway | None:
    if not settings.razorpay_key_id or settings.razorpay_key_secret is None:
        return None
    from pixelfleet.payments.razorpay import RazorpayGateway

    return RazorpayGateway(
        settings.razorpay_key_id,
        settings.razorpay_key_secret.get_secret_value(),
        settings.razorpay_base_url,
        settings.razorpay_timeout_seconds,
    )
