"""Alembic's own commands work from the repository root against the configured database
(`PIXELFLEET_DATABASE_URL`), on SQLite and PostgreSQL alike. They run on a copy of
`alembic.ini` and `migrations/`, so that `revision --autogenerate` writes its file there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from tests.harness.postgres import PostgresServer

# Database semantics (see tests/conftest.py): on SQLite and on PostgreSQL.
pytestmark = [pytest.mark.both_backends, pytest.mark.heavy]

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini")))
HEAD = SCRIPTS.get_current_head()


@pytest.fixture
async def empty_database_url(
    backend: str, tmp_path: Path, postgres_server: PostgresServer
) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"alembic_{uuid.uuid4().hex[:12]}"
    yield await postgres_server.create_database(name)
    await postgres_server.drop_database(name)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copy(ROOT / "alembic.ini", copy / "alembic.ini")
    shutil.copytree(
        ROOT / "migrations", copy / "migrations", ignore=shutil.ignore_patterns("__pycache__")
    )
    return copy


def _alembic(project: Path, database_url: str, *arguments: str) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIXELFLEET_")}
    env["PIXELFLEET_DATABASE_URL"] = database_url
    done = subprocess.run(
        [sys.executable, "-m", "alembic", *arguments],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_alembic_upgrades_reports_downgrades_and_autogenerates_nothing_new(
    project: Path, empty_database_url: str
) -> None:
    def alembic(*arguments: str) -> str:
        return _alembic(project, empty_database_url, *arguments)

    assert HEAD is not None
    assert HEAD not in alembic("current")
    alembic("upgrade", "head")
    current = alembic("current")
    assert HEAD in current
    assert "(head)" in current
    history = alembic("history")
    revisions = [script.revision for script in SCRIPTS.walk_revisions()]
    assert all(revision in history for revision in revisions)

    alembic("downgrade", "-1")
    previous = SCRIPTS.get_revision(HEAD).down_revision
    assert isinstance(previous, str)
    assert previous in alembic("current")
    alembic("upgrade", "head")

    alembic("revision", "--autogenerate", "-m", "nothing changed")
    (generated,) = (project / "migrations" / "versions").glob("*nothing_changed.py")
    body = generated.read_text()
    upgrade = body[body.index("def upgrade") : body.index("def downgrade")]
    assert "op." not in upgrade, f"the models and the migrations differ:\n{upgrade}"
