"""Celery mode against real servers: a Redis server for the module, a fresh PostgreSQL database
per test, real `pixelfleet worker` and `pixelfleet beat` processes, and the API in-process with
the Celery launcher. Each test gets its own queues, so tests never see each other's messages."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixelfleet.settings import Settings
from tests.conftest import TEST_JWT_SECRET
from tests.harness.celery import CeleryProcess, stop_together
from tests.harness.ports import free_port
from tests.harness.redis import RedisServer


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def backend() -> str:
    """Celery mode keeps its records in PostgreSQL."""
    return "postgresql"


@pytest.fixture
def celery_overrides() -> dict[str, Any]:
    """Settings a test module changes (override this fixture)."""
    return {}


@pytest.fixture
def settings(
    database_url: str, tmp_path: Path, redis_server: RedisServer, celery_overrides: dict[str, Any]
) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "jwt_secret": TEST_JWT_SECRET,
        "launcher": "celery",
        "redis_url": redis_server.url,
        "celery_queue": f"test-{uuid.uuid4().hex[:12]}",
        "storage_url": f"file://{tmp_path / 'files'}",
        "task_stale_seconds": 4.0,
        "redispatch_after_seconds": 2.0,
        "scheduler_interval_seconds": 1.0,
        "worker_metrics_port": free_port(),  # not the default: test processes run side by side
        "rate_limits_enabled": False,  # tests/hardening/test_rate_limits.py turns them on
    }
    values.update(celery_overrides)
    return Settings(**values)


class Processes:
    """Starts workers and beat for one test and stops whatever is left at its end."""

    def __init__(self, settings: Settings, directory: Path) -> None:
        self.settings = settings
        self.directory = directory
        self.started: list[CeleryProcess] = []

    def worker(
        self, *, concurrency: int = 1, pool: str = "prefork", queue: str | None = None
    ) -> CeleryProcess:
        """A worker on the settings' queue, or on `queue` (serving its metrics on a port of
        its own)."""
        name = f"worker-{len(self.started)}.log"
        settings = self.settings
        if queue is not None:
            settings = settings.model_copy(
                update={"celery_queue": queue, "worker_metrics_port": free_port()}
            )
        process = CeleryProcess.worker(
            settings, self.directory / name, concurrency=concurrency, pool=pool
        )
        self.started.append(process)
        return process

    def beat(self) -> CeleryProcess:
        process = CeleryProcess.beat(
            self.settings, self.directory / f"beat-{len(self.started)}.log"
        )
        self.started.append(process)
        return process

    def operator(self) -> CeleryProcess:
        """`pixelfleet operator`, ready once its startup hook has run."""
        log = self.directory / f"operator-{len(self.started)}.log"
        process = CeleryProcess.start(self.settings, log, "operator", ready_mark="operator started")
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        stop_together(self.started)


@pytest.fixture
def processes(settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    started = Processes(settings, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 60.0, interval: float = 0.1
) -> None:
    """Waits until `check()` holds (the work happens in other processes)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{check.__name__} did not hold within {within}s")
        await asyncio.sleep(interval)


async def wait_for_status(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    task_id: str,
    statuses: set[str],
    within: float = 60.0,
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        response = await client.get(f"/v1/tasks/{task_id}", headers=headers)
        seen.update(response.json())
        return response.status_code == 200 and seen["status"] in statuses

    reached.__name__ = f"task {task_id} reaching {sorted(statuses)}"
    await eventually(reached, within)
    return seen
