"""The `pixelfleet` command line: migrations, bootstrapping an admin, granting credits."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import text

from pixelfleet.accounts.repository import AccountRepository
from pixelfleet.bootstrap import create_context
from pixelfleet.cli import main
from pixelfleet.settings import Settings
from tests.harness.ports import free_port
from tests.harness.postgres import PostgresServer


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"PIXELFLEET_DATA_DIR": str(tmp_path / "data")}


def _user(env: dict[str, str], email: str) -> tuple[str, int] | None:
    async def read() -> tuple[str, int] | None:
        ctx = create_context(Settings(data_dir=Path(env["PIXELFLEET_DATA_DIR"])))
        try:
            async with ctx.sessions() as session:
                user = await AccountRepository.from_session(session).user_by_email(email)
                return (user.role, user.balance) if user else None
        finally:
            await ctx.close()

    return asyncio.run(read())


def test_migrate_brings_a_new_database_to_the_latest_schema(env: dict[str, str]) -> None:
    runner = CliRunner()
    unmigrated = runner.invoke(main, ["migrate", "--check"], env=env)
    assert unmigrated.exit_code == 1
    assert "not migrated" in unmigrated.output
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    checked = runner.invoke(main, ["migrate", "--check"], env=env)
    assert checked.exit_code == 0, checked.output
    assert "up to date" in checked.output


def test_migrate_check_can_wait_for_another_process_to_migrate(env: dict[str, str]) -> None:
    """What the chart's pods do before they start: wait for the migration Job."""
    migrator = threading.Timer(1.0, lambda: CliRunner().invoke(main, ["migrate"], env=env))
    migrator.start()
    try:
        started = time.monotonic()
        waited = CliRunner().invoke(main, ["migrate", "--check", "--wait", "60"], env=env)
    finally:
        migrator.join()
    assert waited.exit_code == 0, waited.output
    assert 1.0 <= time.monotonic() - started < 30


def test_migrate_check_gives_up_waiting_with_the_reason(env: dict[str, str]) -> None:
    unmigrated = CliRunner().invoke(main, ["migrate", "--check", "--wait", "0.5"], env=env)
    assert unmigrated.exit_code == 1
    assert "not migrated" in unmigrated.output
    unreachable = CliRunner().invoke(
        main,
        ["migrate", "--check", "--wait", "0.5"],
        env={**env, "PIXELFLEET_DATABASE_URL": f"postgresql+asyncpg://x@127.0.0.1:{free_port()}/x"},
    )
    assert unreachable.exit_code == 1
    assert "unreachable" in unreachable.output


def test_migrate_can_wait_for_the_database_to_come_up(postgres_server: PostgresServer) -> None:
    """The migration Job may start before the chart's PostgreSQL answers."""
    database = f"waited_{uuid.uuid4().hex[:8]}"
    env = {"PIXELFLEET_DATABASE_URL": postgres_server.url(database)}

    def create_database() -> None:
        async def create() -> None:
            admin = await asyncpg.connect(postgres_server.admin_dsn)
            try:
                await admin.execute(f'create database "{database}"')
            finally:
                await admin.close()

        asyncio.run(create())

    creator = threading.Timer(1.0, create_database)
    creator.start()
    try:
        migrated = CliRunner().invoke(main, ["migrate", "--wait", "60"], env=env)
    finally:
        creator.join()
    assert migrated.exit_code == 0, migrated.output
    checked = CliRunner().invoke(main, ["migrate", "--check"], env=env)
    assert checked.exit_code == 0, checked.output


def test_migrate_check_can_allow_a_schema_newer_than_the_code(env: dict[str, str]) -> None:
    """What pods check during a rolling upgrade, when the hook has migrated past them."""
    assert CliRunner().invoke(main, ["migrate"], env=env).exit_code == 0

    async def stamp() -> None:
        ctx = create_context(Settings(data_dir=Path(env["PIXELFLEET_DATA_DIR"])))
        try:
            async with ctx.engine.begin() as connection:
                await connection.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
        finally:
            await ctx.close()

    asyncio.run(stamp())
    strict = CliRunner().invoke(main, ["migrate", "--check"], env=env)
    assert strict.exit_code == 1
    assert "newer than this code" in strict.output
    allowed = CliRunner().invoke(main, ["migrate", "--check", "--allow-newer"], env=env)
    assert allowed.exit_code == 0, allowed.output
    misused = CliRunner().invoke(main, ["migrate", "--allow-newer"], env=env)
    assert misused.exit_code == 2
    # An older release (a rollback, a redeploy of an older commit) migrates nothing and goes on.
    rolled_back = CliRunner().invoke(main, ["migrate"], env=env)
    assert rolled_back.exit_code == 0, rolled_back.output
    assert "nothing to migrate" in rolled_back.output
    seeded = CliRunner().invoke(
        main,
        ["admin", "seed", "--admin-email", "root@example.com", "--password-stdin"],
        input="violet kettle harbour 42\n",
        env=env,
    )
    assert seeded.exit_code == 0, seeded.output


def test_create_user_bootstraps_an_admin(env: dict[str, str]) -> None:
    runner = CliRunner()
    created = runner.invoke(
        main,
        ["admin", "create-user", "root@example.com", "--admin", "--password-stdin"],
        input="a long admin password\n",
        env=env,
    )
    assert created.exit_code == 0, created.output
    assert _user(env, "root@example.com") == ("admin", 100)
    again = runner.invoke(
        main,
        ["admin", "create-user", "root@example.com", "--password-stdin"],
        input="a long admin password\n",
        env=env,
    )
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_create_user_refuses_a_weak_password(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        main,
        ["admin", "create-user", "weak@example.com", "--password-stdin"],
        input="short\n",
        env=env,
    )
    assert result.exit_code == 1
    assert "password" in result.output


def test_grant_adds_credits_through_the_ledger(env: dict[str, str]) -> None:
    runner = CliRunner()
    runner.invoke(
        main,
        ["admin", "create-user", "rich@example.com", "--password-stdin"],
        input="a long enough password\n",
        env=env,
    )
    granted = runner.invoke(main, ["admin", "grant", "rich@example.com", "250"], env=env)
    assert granted.exit_code == 0, granted.output
    assert "balance is now 350" in granted.output
    assert _user(env, "rich@example.com") == ("user", 350)
    missing = runner.invoke(main, ["admin", "grant", "nobody@example.com", "5"], env=env)
    assert missing.exit_code == 1


def test_openapi_prints_the_api_document(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["openapi"], env=env)
    assert result.exit_code == 0
    assert "/v1/tasks" in json.loads(result.output)["paths"]


def test_openapi_writes_yaml_or_json_by_the_file_s_extension(
    env: dict[str, str], tmp_path: Path
) -> None:
    runner = CliRunner()
    printed = json.loads(runner.invoke(main, ["openapi"], env=env).output)
    as_yaml = runner.invoke(main, ["openapi", "--format", "yaml"], env=env)
    assert as_yaml.exit_code == 0
    assert yaml.safe_load(as_yaml.output) == printed

    for name, load in (("spec.yml", yaml.safe_load), ("spec.json", json.loads)):
        written = runner.invoke(main, ["openapi", "--output", str(tmp_path / name)], env=env)
        assert written.exit_code == 0, written.output
        assert load((tmp_path / name).read_text()) == printed


def test_seed_creates_the_first_admin_once_and_lists_the_packs(env: dict[str, str]) -> None:
    runner = CliRunner()
    command = ["admin", "seed", "--admin-email", "Root@Example.com", "--password-stdin"]
    first = runner.invoke(main, command, input="violet kettle harbour 42\n", env=env)
    assert first.exit_code == 0, first.output
    assert "pack starter: 500 credits for 499.00 INR" in first.output
    assert "payments are not configured" in first.output
    assert "created the administrator" in first.output
    assert _user(env, "root@example.com") == ("admin", 100)

    again = runner.invoke(main, ["admin", "seed", "--admin-email", "root@example.com"], env=env)
    assert again.exit_code == 0, again.output  # no password needed: nothing to create
    assert "kept the administrator" in again.output
    assert _user(env, "root@example.com") == ("admin", 100)


def test_seed_reads_its_admin_from_the_environment(env: dict[str, str]) -> None:
    seeded = {
        **env,
        "PIXELFLEET_SEED_ADMIN_EMAIL": "ops@example.com",
        "PIXELFLEET_SEED_ADMIN_PASSWORD": "violet kettle harbour 42",
    }
    result = CliRunner().invoke(main, ["admin", "seed"], env=seeded)
    assert result.exit_code == 0, result.output
    assert _user(env, "ops@example.com") == ("admin", 100)


def test_seed_does_not_make_an_existing_user_an_admin(env: dict[str, str]) -> None:
    runner = CliRunner()
    runner.invoke(
        main,
        ["admin", "create-user", "someone@example.com", "--password-stdin"],
        input="a long enough password\n",
        env=env,
    )
    result = runner.invoke(main, ["admin", "seed", "--admin-email", "someone@example.com"], env=env)
    assert result.exit_code == 1
    assert "already has an account, as a user" in result.output
    assert _user(env, "someone@example.com") == ("user", 100)


def test_seed_without_a_password_for_a_new_admin_says_so(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        main, ["admin", "seed", "--admin-email", "new@example.com"], env=env
    )
    assert result.exit_code == 1
    assert "give its password" in result.output
    assert _user(env, "new@example.com") is None


def test_migrate_check_fails_when_the_models_and_the_migrations_differ(
    env: dict[str, str],
) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    assert runner.invoke(main, ["migrate", "--check"], env=env).exit_code == 0

    async def drift() -> None:  # a column no migration made, as a hand edit would add
        ctx = create_context(Settings(data_dir=Path(env["PIXELFLEET_DATA_DIR"])))
        try:
            async with ctx.engine.begin() as connection:
                await connection.execute(text("ALTER TABLE presets ADD COLUMN colour VARCHAR(8)"))
        finally:
            await ctx.close()

    asyncio.run(drift())
    checked = runner.invoke(main, ["migrate", "--check"], env=env)
    assert checked.exit_code == 1
    assert "the models differ from the migrations" in checked.output
    assert "colour" in checked.output


def test_a_refused_setting_is_named_without_quoting_the_other_settings(
    env: dict[str, str],
) -> None:
    production = {
        **env,
        "PIXELFLEET_ENV": "production",
        "PIXELFLEET_JWT_SECRET": "jwt-REAL-" + "k" * 40,
        "PIXELFLEET_RAZORPAY_WEBHOOK_SECRET": "whk-REAL-razorpay-0042xyz",
        "PIXELFLEET_RAZORPAY_KEY_SECRET": "tiny7",
    }
    result = CliRunner().invoke(main, ["migrate"], env=production)
    assert result.exit_code == 1
    assert "PIXELFLEET_RAZORPAY_KEY_SECRET" in result.output
    assert "REAL" not in result.output
    assert "tiny7" not in result.output
