"""Shared fixtures: a real PostgreSQL server for the session, a fresh migrated database per test,
the process context and an HTTP client on the real app.

Which database a test runs on (the `backend` fixture):
- A test whose subject is the database (concurrency, locking, row security, migrations, money
  races) runs on both backends, SQLite and PostgreSQL: mark it `@pytest.mark.both_backends`, or
  its whole module with `pytestmark = pytest.mark.both_backends`.
- Every other test runs on one backend, `ONE_BACKEND` (SQLite: a fresh database is a file copy).
- A test or module that needs a particular backend pins it: a module-level `backend` fixture
  returning it, or `@pytest.mark.parametrize("backend", [...], indirect=True)` on a test.

A fresh database per test is a copy of one migrated for the session: a file copy on SQLite,
`CREATE DATABASE ... TEMPLATE` on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from pixelfleet.api.app import create_app
from pixelfleet.bootstrap import create_context
from pixelfleet.context import ProcessContext
from pixelfleet.db import create_engine
from pixelfleet.jobs.pipeline_processes import PipelineProcesses
from pixelfleet.schema_migrations import upgrade_to_head
from pixelfleet.settings import Settings
from pixelfleet.worker.embedded import run_worker
from tests.hardening.tally import TALLY
from tests.harness.postgres import PostgresServer

# Passwords are hashed at argon2's cheapest cost in the tests and in the processes they start
# (the harness passes it on); tests/accounts/test_password_hashing.py checks the standard cost.
os.environ["PIXELFLEET_PASSWORD_HASHING"] = "cheapest"

TEMPLATE_DATABASE = "pixelfleet_template"
TEST_JWT_SECRET = "test-secret-" + "x" * 52


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def postgres_template(postgres_server: PostgresServer) -> str:
    engine = create_engine(await postgres_server.create_database(TEMPLATE_DATABASE))
    await upgrade_to_head(engine)
    await engine.dispose()
    return TEMPLATE_DATABASE


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "pixelfleet.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade_to_head(engine)
    await engine.dispose()
    return path


BACKENDS = ("sqlite", "postgresql")
# The backend of every test whose subject is not the database.
ONE_BACKEND = "sqlite"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "both_backends: the test is about database semantics: it runs on SQLite and PostgreSQL",
    )
    config.addinivalue_line(
        "markers",
        "heavy: a module of a minute or more (whole processes per test): it is started first",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules marked `heavy` first, each in its own order. pytest-xdist (`--dist loadfile
    --no-loadscope-reorder`) hands the files out in this order, so the long ones start early
    and the two test processes end together, not one of them running the last long file alone
    (reordered by their number of tests, the long files, which have few tests, came last)."""
    items.sort(key=lambda item: item.get_closest_marker("heavy") is None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Runs a `both_backends` test once per backend (unless it pins its backend itself)."""
    if "backend" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("both_backends") is None:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if "backend" in (names.replace(" ", "").split(",") if isinstance(names, str) else names):
            return
    metafunc.parametrize("backend", BACKENDS, indirect=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A pytest-xdist worker hands what the hardening tests tried to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["hardening_tally"] = TALLY.as_dict()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """The controller adds up what each pytest-xdist worker's hardening tests tried."""
    workeroutput = getattr(node, "workeroutput", None)
    if workeroutput and "hardening_tally" in workeroutput:
        TALLY.add(workeroutput["hardening_tally"])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The line `hardening: N attacks tried, E server errors, C credits lost`, over every
    process that ran hardening tests."""
    if not TALLY.tried:
        return
    by_kind = ", ".join(f"{kind} {count}" for kind, count in sorted(TALLY.tried.items()))
    terminalreporter.write_line(f"{TALLY.line()} ({by_kind})")
    for error in TALLY.server_errors:
        terminalreporter.write_line(f"  server error: {error}")


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of the test: see the module docstring."""
    return str(getattr(request, "param", ONE_BACKEND))


@pytest.fixture
async def database_url(
    backend: str,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_server: PostgresServer,
    postgres_template: str,
) -> AsyncIterator[str]:
    """A freshly migrated, empty database of the test's backend."""
    if backend == "sqlite":
        path = tmp_path / "pixelfleet.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    name = f"test_{uuid.uuid4().hex[:16]}"
    yield await postgres_server.create_database(name, template=postgres_template)
    await postgres_server.drop_database(name)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        jwt_secret=TEST_JWT_SECRET,
        worker_poll_seconds=0.05,
        rate_limits_enabled=False,  # tests/hardening/test_rate_limits.py turns them on
    )


@pytest.fixture(scope="session")
async def pipeline_processes() -> AsyncIterator[PipelineProcesses]:
    """Pipeline processes shared by every test's context: each takes over half a second of
    CPU to start, so they are started once, not per test."""
    processes = PipelineProcesses()
    try:
        yield processes
    finally:
        await processes.close()


@pytest.fixture
async def ctx(
    settings: Settings, pipeline_processes: PipelineProcesses
) -> AsyncIterator[ProcessContext]:
    context = create_context(settings, pipelines=pipeline_processes)
    try:
        yield context
    finally:
        await context.close()


@pytest.fixture
async def client(ctx: ProcessContext) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(ctx=ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://pixelfleet.test") as http:
        yield http


@pytest.fixture
async def worker(ctx: ProcessContext) -> AsyncIterator[None]:
    """An embedded worker running beside the API on `ctx`, as under `pixelfleet up`."""
    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(ctx, "test-worker", stop))
    yield
    stop.set()
    await asyncio.wait_for(running, 30)
