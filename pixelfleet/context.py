"""Process-level resources (engine, sessions, storage), built once per process from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from pixelfleet.accounts.tokens import TokenSigner
from pixelfleet.db import create_engine, create_read_session_factory, create_session_factory
from pixelfleet.events import EventChannel, NoEvents
from pixelfleet.events.redis_stream import RedisEventStream
from pixelfleet.jobs.pipeline_processes import PipelineProcesses
from pixelfleet.launchers import Launcher
from pixelfleet.launchers.factory import create_launcher
from pixelfleet.payments.gateway import PaymentGateway
from pixelfleet.rate_limits.limiter import Limiter, rules_from
from pixelfleet.rate_limits.stores import MemoryRateStore, RateStore, RedisRateStore
from pixelfleet.settings import Settings
from pixelfleet.storage import Storage
from pixelfleet.storage.factory import create_storage


@dataclass
class ProcessContext:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    storage: Storage
    signer: TokenSigner = field(repr=False)
    launcher: Launcher
    events: EventChannel
    redis: Redis | None = None
    # The payment provider, when its keys are configured.
    payments: PaymentGateway | None = None
    limiter: Limiter = field(default_factory=lambda: Limiter({}, None))
    # The child processes that run pipelines (started on first use; a worker's only).
    pipelines: PipelineProcesses = field(default_factory=PipelineProcesses)
    # False when `pipelines` is borrowed from another context, which closes them.
    owns_pipelines: bool = True

    @property
    def retention(self) -> timedelta:
        return timedelta(hours=self.settings.result_ttl_hours)

    @property
    def refresh_ttl(self) -> timedelta:
        return timedelta(days=self.settings.refresh_token_days)

    async def close(self) -> None:
        if self.owns_pipelines:
            await self.pipelines.close()
        await self.launcher.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


def create_context(
    settings: Settings, *, pipelines: PipelineProcesses | None = None
) -> ProcessContext:
    """The context of a process. `pipelines` shares another context's pipeline processes
    (whose owner closes them) instead of starting this context's own."""
    engine = create_engine(settings.resolved_database_url)
    redis_url = settings.resolved_redis_url
    redis = (
        Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=15)
        if redis_url
        else None
    )
    events: EventChannel = (
        RedisEventStream(redis, settings.events_stream_max_length) if redis else NoEvents()
    )
    return ProcessContext(
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
        launcher=create_launcher(settings),
        events=events,
        redis=redis,
        payments=_payment_gateway(settings),
        limiter=_limiter(settings, redis),
        pipelines=pipelines or PipelineProcesses(),
        owns_pipelines=pipelines is None,
    )


def _limiter(settings: Settings, redis: Redis | None) -> Limiter:
    if not settings.rate_limits_enabled:
        return Limiter(rules_from(settings), None)
    store: RateStore = RedisRateStore(redis) if redis else MemoryRateStore()
    return Limiter(rules_from(settings), store)


def _payment_gateway(settings: Settings) -> PaymentGateway | None:
    if not settings.razorpay_key_id or settings.razorpay_key_secret is None:
        return None
    from pixelfleet.payments.gateway import RazorpayGateway

    return RazorpayGateway(
        settings.razorpay_key_id,
        settings.razorpay_key_secret.get_secret_value(),
        settings.razorpay_base_url,
        settings.razorpay_timeout_seconds,
    )
