"""Passwords kept apart from the connection URLs (PIXELFLEET_DATABASE_PASSWORD and
PIXELFLEET_REDIS_PASSWORD, as the chart sets them from Secrets) may hold any character: the
settings put them into the URLs escaped, and the real servers accept them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from pixelfleet.db import create_engine
from pixelfleet.settings import Settings
from pixelfleet.worker.celery_config import create_celery
from tests.harness.postgres import PostgresServer
from tests.harness.redis import RedisServer

# Database semantics (see tests/conftest.py): on SQLite and on PostgreSQL.
pytestmark = pytest.mark.both_backends

AWKWARD = "p@ss:w/rd?#%20+ é"


@pytest.fixture(scope="module")
def redis_with_password() -> Iterator[RedisServer]:
    server = RedisServer.start(password=AWKWARD)
    yield server
    server.stop()


def test_without_a_separate_password_the_urls_are_used_as_given() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://app:inline@db:5432/app", redis_url="redis://r:6379/0"
    )
    assert settings.resolved_database_url == "postgresql+asyncpg://app:inline@db:5432/app"
    assert settings.resolved_redis_url == "redis://r:6379/0"


def test_the_database_password_replaces_the_one_in_the_url() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://app:old@db.example:5433/app",
        database_password=AWKWARD,
    )
    url = make_url(settings.resolved_database_url)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "app",
        AWKWARD,
        "db.example",
        5433,
        "app",
    )


async def test_a_database_url_with_an_awkward_password_still_reaches_its_server(
    postgres_server: PostgresServer,
) -> None:
    settings = Settings(database_url=postgres_server.url("postgres"), database_password=AWKWARD)
    engine = create_engine(settings.resolved_database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("select current_user")) == "postgres"
    finally:
        await engine.dispose()


def test_redis_and_the_celery_broker_log_in_with_an_awkward_password(
    redis_with_password: RedisServer,
) -> None:
    settings = Settings(redis_url=redis_with_password.url, redis_password=AWKWARD)
    resolved = settings.resolved_redis_url
    assert resolved is not None
    with Redis.from_url(resolved) as client:
        assert client.ping() is True
    app = create_celery(settings)
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
        assert connection.connected


def test_without_the_password_redis_refuses(redis_with_password: RedisServer) -> None:
    from redis.exceptions import AuthenticationError, ResponseError

    with (
        Redis.from_url(redis_with_password.url) as client,
        pytest.raises((AuthenticationError, ResponseError)),
    ):
        client.ping()


def test_a_user_name_in_the_redis_url_is_kept() -> None:
    settings = Settings(redis_url="rediss://app@cache:6380/2", redis_password="x/y")
    assert settings.resolved_redis_url == "rediss://app:x%2Fy@cache:6380/2"


async def test_tls_options_in_the_database_url_survive_the_password(
    postgres_server: PostgresServer,
) -> None:
    """The chart appends `?ssl=...` for a managed database; asyncpg takes it (`prefer` falls
    back to plain on this server, which has no certificate)."""
    settings = Settings(
        database_url=f"{postgres_server.url('postgres')}?ssl=prefer", database_password=AWKWARD
    )
    assert make_url(settings.resolved_database_url).query == {"ssl": "prefer"}
    engine = create_engine(settings.resolved_database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("select 1")) == 1
    finally:
        await engine.dispose()


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
async def test_a_platform_s_plain_postgres_url_reaches_the_server_through_asyncpg(
    scheme: str, postgres_server: PostgresServer
) -> None:
    """Render, Railway, Heroku and Supabase hand out `postgres://` or `postgresql://` URLs."""
    plain = postgres_server.url("postgres").replace("postgresql+asyncpg://", f"{scheme}://")
    settings = Settings(database_url=plain)
    assert settings.resolved_database_url.startswith("postgresql+asyncpg://")
    engine = create_engine(settings.resolved_database_url)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()
