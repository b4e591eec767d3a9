"""The `pixelfleet` command line."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

import click
import uvicorn

from pixelfleet.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from pixelfleet.context import ProcessContext
    from pixelfleet.credits.service import LedgerAudit
    from pixelfleet.schema_migrations import SchemaState

T = TypeVar("T")

log = logging.getLogger("pixelfleet.cli")

WORKER_STOP_SECONDS = 30.0


def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        # Each error's own words only: pydantic would also quote the input, which is every
        # setting, secrets included.
        said = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise click.ClickException(f"invalid settings: {said}") from None
    except ValueError as exc:
        raise click.ClickException(f"invalid settings: {exc}") from exc


@click.group()
@click.version_option(package_name="pixelfleet")
def main() -> None:
    """PixelFleet: image processing for credits."""


async def _migrate(settings: Settings) -> bool:
    """Migrates to this code's head; False when a newer release's schema is left as it is."""
    from alembic.util import CommandError

    from pixelfleet.db import create_engine
    from pixelfleet.schema_migrations import upgrade_to_head

    engine = create_engine(settings.resolved_database_url)
    try:
        return await upgrade_to_head(engine)
    except CommandError as exc:
        raise click.ClickException(f"the migrations failed: {exc}") from exc
    finally:
        await engine.dispose()


async def _migration_status(settings: Settings) -> tuple[SchemaState, list[object]]:
    """The schema's state, and (when current) how the models differ from it."""
    from pixelfleet.db import create_engine
    from pixelfleet.schema_migrations import model_drift, schema_state

    engine = create_engine(settings.resolved_database_url)
    try:
        state = await schema_state(engine)
        return state, (await model_drift(engine)) if state == "current" else []
    finally:
        await engine.dispose()


async def _status_when_reachable(
    settings: Settings, seconds: float, *, until: frozenset[SchemaState]
) -> tuple[SchemaState, list[object]]:
    """The migration status once the database answers with a state in `until` (any state when
    empty), or as it stands when `seconds` have passed: an unreachable database then raises."""
    from sqlalchemy.exc import SQLAlchemyError

    deadline = time.monotonic() + seconds
    while True:
        try:
            status = await _migration_status(settings)
        except (OSError, SQLAlchemyError):
            if time.monotonic() >= deadline:
                raise
            status = None
        if status is not None and (not until or status[0] in until or time.monotonic() >= deadline):
            return status
        await asyncio.sleep(min(2.0, max(0.0, deadline - time.monotonic())))


def _require_usable_schema(settings: Settings) -> None:
    """Refuses to start a part on a database older than its code."""
    state, _drift = asyncio.run(_migration_status(settings))
    if state == "behind":
        raise click.ClickException(
            "the database is not migrated to the latest revision: run `pixelfleet migrate` first"
        )


@main.command()
@click.option("--check", is_flag=True, help="Only check that the database is at the latest schema.")
@click.option(
    "--allow-newer",
    is_flag=True,
    help="With --check: also pass on a schema newer than this code's (a rolling upgrade).",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Wait this long for the database to come up (with --check: and to be migrated).",
)
def migrate(check: bool, allow_newer: bool, wait_seconds: float) -> None:
    """Apply the database migrations (or check them)."""
    from sqlalchemy.exc import SQLAlchemyError

    from pixelfleet.observability.logging import configure_logging

    configure_logging()
    settings = _settings()
    if allow_newer and not check:
        raise click.UsageError("--allow-newer goes with --check")
    passing: frozenset[SchemaState] = frozenset(
        ({"current", "ahead"} if allow_newer else {"current"}) if check else set()
    )
    try:
        state, drift = asyncio.run(_status_when_reachable(settings, wait_seconds, until=passing))
        if check:
            if state not in passing:
                raise click.ClickException(
                    "the database is newer than this code's migrations"
                    if state == "ahead"
                    else "the database is not migrated to the latest revision"
                )
            if drift:
                raise click.ClickException(f"the models differ from the migrations: {drift}")
            click.echo(
                "database schema is up to date"
                if state == "current"
                else "database schema is newer than this code's, which works on it"
            )
            return
        migrated = asyncio.run(_migrate(settings))
    except (OSError, SQLAlchemyError) as exc:
        raise click.ClickException(f"the database is unreachable: {exc}") from exc
    click.echo(
        "database migrated to the latest revision"
        if migrated
        else "database schema is newer than this code's, which works on it: nothing to migrate"
    )


class _Fleet:
    """The embedded mode's worker and scheduler processes, restarted if one dies."""

    def __init__(self, workers: int) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.processes: dict[str, BaseProcess] = {}
        self.targets: dict[str, tuple[Callable[..., None], tuple[object, ...]]] = {}
        self.stopping = threading.Event()
        from pixelfleet.worker.embedded import scheduler_process_main, worker_process_main

        for index in range(workers):
            self.targets[f"worker-{index}"] = (worker_process_main, (index,))
        self.targets["scheduler"] = (scheduler_process_main, ())

    def _spawn(self, name: str) -> None:
        target, args = self.targets[name]
        process = self.context.Process(target=target, args=args, name=f"pixelfleet-{name}")
        process.start()
        self.processes[name] = process

    def start(self) -> None:
        for name in self.targets:
            self._spawn(name)
        threading.Thread(target=self._watch, name="fleet-watch", daemon=True).start()

    def _watch(self) -> None:
        from pixelfleet.observability import exposition

        while not self.stopping.wait(1.0):
            for name, process in list(self.processes.items()):
                if not process.is_alive() and not self.stopping.is_set():
                    log.warning("%s exited with %s; starting it again", name, process.exitcode)
                    if process.pid is not None:
                        exposition.forget_process(process.pid)
                    self._spawn(name)

    def stop(self) -> None:
        self.stopping.set()
        for process in self.processes.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            process.join(WORKER_STOP_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()


def _lock_data_dir(data_dir: Path) -> IO[str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / "pixelfleet.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        raise click.ClickException(
            f"another `pixelfleet up` is already running on {data_dir}"
        ) from exc
    return handle


async def _prepare_embedded(settings: Settings) -> int:
    from pixelfleet.context import create_context
    from pixelfleet.db import utcnow
    from pixelfleet.jobs.maintenance import recover_stale_tasks
    from pixelfleet.worker.embedded import worker_prefix

    await _migrate(settings)
    ctx = create_context(settings)
    try:
        # Only one `up` runs on this data dir, so every task its workers were running was
        # interrupted (workers of other machines sharing the database are left alone).
        return await recover_stale_tasks(ctx, stale_before=utcnow(), worker_prefix=worker_prefix())
    finally:
        await ctx.close()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the database and files live (default: PIXELFLEET_DATA_DIR or ./.pixelfleet).",
)
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Worker processes.")
def up(host: str, port: int, data_dir: Path | None, workers: int | None) -> None:
    """Run everything on one machine: migrations, API, workers and scheduler."""
    from pixelfleet.observability import metrics_dir
    from pixelfleet.observability.logging import configure_logging

    configure_logging()
    if data_dir is not None:
        os.environ["PIXELFLEET_DATA_DIR"] = str(data_dir.resolve())
    if workers is not None:
        os.environ["PIXELFLEET_EMBEDDED_WORKERS"] = str(workers)
    os.environ["PIXELFLEET_LAUNCHER"] = "embedded"
    settings = _settings()
    lock = _lock_data_dir(settings.data_dir)
    # Before the metrics load: the API's /metrics reads every worker process's too.
    metrics_dir.use_directory(settings.data_dir.resolve() / "metrics")
    from pixelfleet.api.app import create_app

    recovered = asyncio.run(_prepare_embedded(settings))
    if recovered:
        log.info("requeued %d task(s) interrupted by the last shutdown", recovered)
    fleet = _Fleet(settings.embedded_workers)
    fleet.start()
    log.info(
        "PixelFleet is up on http://%s:%d (docs at /docs), data in %s",
        host,
        port,
        settings.data_dir.resolve(),
    )
    # uvicorn re-raises the signal that stopped it; let that return here so workers stop warm.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: None)
    try:
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            forwarded_allow_ips=settings.trusted_proxies,
        )
    finally:
        log.info("stopping workers (each finishes its current task)")
        fleet.stop()
        lock.close()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
def api(host: str, port: int) -> None:
    """Run the API alone (celery and kubernetes modes)."""
    from pixelfleet.api.app import create_app
    from pixelfleet.observability.logging import configure_logging

    configure_logging()
    settings = _settings()
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        forwarded_allow_ips=settings.trusted_proxies,
    )


def _celery_settings(command: str) -> Settings:
    """Settings for a Celery process: it needs Redis, and it re-dispatches through the broker
    (or the configured launcher), never through the embedded one."""
    if os.environ.get("PIXELFLEET_LAUNCHER", "embedded") == "embedded":
        os.environ["PIXELFLEET_LAUNCHER"] = "celery"
    settings = _settings()
    if not settings.redis_url:
        raise click.ClickException(
            f"`pixelfleet {command}` needs PIXELFLEET_REDIS_URL (the broker)"
        )
    _require_usable_schema(settings)
    return settings


@main.command()
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 256),
    default=None,
    help="Task processes (default: one per core).",
)
@click.option(
    "--queues",
    "-Q",
    default=None,
    help="Comma-separated queues (default: the task queue and its control queue).",
)
@click.option(
    "--pool",
    type=click.Choice(["prefork", "solo", "threads"]),
    default="prefork",
    show_default=True,
)
@click.option("--loglevel", default="INFO", show_default=True)
def worker(concurrency: int | None, queues: str | None, pool: str, loglevel: str) -> None:
    """Run a Celery worker (celery mode). SIGTERM stops it warm: running tasks finish."""
    from pixelfleet.observability.logging import configure_logging

    configure_logging()
    # Before the Celery app (and the metrics) load: the pool's processes share one directory.
    from pixelfleet.observability import metrics_dir

    metrics_dir.use_directory()
    settings = _celery_settings("worker")
    from pixelfleet.worker.celery_app import app
    from pixelfleet.worker.names import control_queue

    argv = [
        "worker",
        f"--loglevel={loglevel}",
        f"--pool={pool}",
        f"--queues={queues or f'{settings.celery_queue},{control_queue(settings.celery_queue)}'}",
        "--without-gossip",
        "--without-mingle",
        "--hostname=pixelfleet@%h",
    ]
    if concurrency is not None:
        argv.append(f"--concurrency={concurrency}")
    app.worker_main(argv)


@main.command()
@click.option("--loglevel", default="INFO", show_default=True)
def beat(loglevel: str) -> None:
    """Run the Celery beat scheduler (one per installation): re-dispatch, recovery, expiry,
    webhook retries."""
    from pixelfleet.observability.logging import configure_logging

    configure_logging()
    settings = _celery_settings("beat")
    from pixelfleet.worker.celery_app import app

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app.start(
        [
            "beat",
            f"--loglevel={loglevel}",
            f"--schedule={settings.data_dir.resolve() / 'celerybeat-schedule'}",
        ]
    )


@main.command()
@click.option("--namespace", "-n", "namespaces", multiple=True, help="Watch this namespace.")
@click.option("--all-namespaces", "-A", is_flag=True, help="Watch every namespace (default).")
def operator(namespaces: tuple[str, ...], all_namespaces: bool) -> None:
    """Run the Kopf operator that reconciles ImageJobs and scales WorkerPools (in-cluster
    credentials, else KUBECONFIG);
    its liveness probe answers on PIXELFLEET_OPERATOR_LIVENESS_PORT at /healthz."""
    from pixelfleet.observability.logging import configure_logging

    configure_logging()
    settings = _settings()
    if not settings.redis_url:
        raise click.ClickException("`pixelfleet operator` needs PIXELFLEET_REDIS_URL")
    _require_usable_schema(settings)
    import kopf

    # Importing the handler modules registers them.
    import pixelfleet.operator.imagejobs
    import pixelfleet.operator.workerpools  # noqa: F401

    kopf.run(
        standalone=True,
        clusterwide=all_namespaces or not namespaces,
        namespaces=list(namespaces),
        liveness_endpoint=f"http://0.0.0.0:{settings.operator_liveness_port}/healthz",
    )


@main.command()
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write each CRD to a file here (the chart keeps them in charts/pixelfleet/crds).",
)
def crds(output_dir: Path | None) -> None:
    """Print (or write) the CustomResourceDefinitions, generated from the resource models."""
    from pixelfleet.operator.resources import crd_manifests, render_yaml

    for filename, manifest in crd_manifests().items():
        text = render_yaml(manifest)
        if output_dir is None:
            click.echo("---\n" + text, nl=False)
        else:
            output_dir.mkdir(parents=True, exist_ok=True)
            (output_dir / filename).write_text(text, encoding="utf-8")
            click.echo(f"wrote {output_dir / filename}")


@main.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "yaml"]),
    default=None,
    help="Default: from the --output file's extension, else json.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the document to this file instead of standard output.",
)
def openapi(fmt: str | None, output: Path | None) -> None:
    """Print (or write) the OpenAPI document, with an example for every request body and
    every problem answer, for client generators and API tools."""
    from pixelfleet.api.app import create_app

    document = create_app(_settings()).openapi()
    if fmt is None:
        fmt = "yaml" if output is not None and output.suffix in {".yaml", ".yml"} else "json"
    if fmt == "yaml":
        import yaml

        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    else:
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@main.command("smoke-test")
@click.argument("url")
@click.option("--timeout", type=click.FloatRange(min=1), default=120, show_default=True)
@click.option("--email", envvar="PIXELFLEET_SMOKE_EMAIL", help="Sign in as this account.")
@click.option(
    "--password", envvar="PIXELFLEET_SMOKE_PASSWORD", help="Its password (else a new account)."
)
def smoke_test(url: str, timeout: float, email: str | None, password: str | None) -> None:
    """Check a running deployment at URL end to end: health, sign-in, and a tiny image through
    the pipeline. Without --email it signs up a throwaway account."""
    import httpx

    from pixelfleet.smoke import Account, SmokeTestFailed, run_smoke_test

    if bool(email) != bool(password):
        raise click.UsageError("--email and --password go together")
    account = Account(email, password) if email and password else None
    try:
        run_smoke_test(url, timeout=timeout, account=account, say=click.echo)
    except (SmokeTestFailed, httpx.HTTPError) as exc:
        raise click.ClickException(f"smoke test failed: {exc}") from exc
    click.echo("smoke test passed")


@main.group()
def admin() -> None:
    """Administration: accounts and credits."""


async def _in_transaction(
    settings: Settings, work: Callable[[ProcessContext, AsyncSession], Awaitable[T]]
) -> T:
    """Runs `work` in one transaction, in a process context of its own."""
    from pixelfleet.context import create_context
    from pixelfleet.db import unit_of_work

    ctx = create_context(settings)
    try:
        async with unit_of_work(ctx) as session:
            return await work(ctx, session)
    finally:
        await ctx.close()


async def _create_user(settings: Settings, email: str, password: str, role: str) -> str:
    from pixelfleet.accounts import service as accounts

    async def create(_ctx: ProcessContext, session: AsyncSession) -> str:
        user = await accounts.register(
            session, email, password, signup_credits=settings.signup_credits, role=role
        )
        return str(user.id)

    return await _in_transaction(settings, create)


@admin.command("create-user")
@click.argument("email")
@click.option("--admin", "is_admin", is_flag=True, help="Give the account the admin role.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user(email: str, is_admin: bool, password_stdin: bool) -> None:
    """Create an account (the database is migrated first if it needs to be)."""
    from pixelfleet.accounts.schemas import RegisterRequest
    from pixelfleet.errors import PixelFleetError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        RegisterRequest(email=email, password=password)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    settings = _settings()
    asyncio.run(_migrate(settings))
    try:
        user_id = asyncio.run(
            _create_user(settings, email, password, "admin" if is_admin else "user")
        )
    except PixelFleetError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"created {'admin' if is_admin else 'user'} {email} ({user_id})")


def _os_user() -> str:
    """Who runs the command, for the audit trail (a container may have no name for its uid)."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"


async def _grant(settings: Settings, email: str, amount: int, note: str) -> int:
    from pixelfleet.accounts import service as accounts
    from pixelfleet.admin import service as admin_service

    async def grant(_ctx: ProcessContext, session: AsyncSession) -> int:
        user = await accounts.find_user(session, email)
        result = await admin_service.adjust_credits(
            session, admin_service.Actor.command_line(_os_user()), user.id, amount, note
        )
        return result.adjustment.balance_after

    return await _in_transaction(settings, grant)


@admin.command()
@click.argument("email")
@click.argument("amount", type=click.IntRange(min=1))
@click.option(
    "--note",
    default="granted by an administrator",
    show_default=True,
    help="Why: the ledger entry's note and the audit trail's reason (3 to 255 characters).",
)
def grant(email: str, amount: int, note: str) -> None:
    """Give an account credits (recorded in its ledger, and in the audit trail as
    `cli:<OS user>`)."""
    from pixelfleet.admin.schemas import CreditAdjustmentIn
    from pixelfleet.errors import PixelFleetError

    try:
        checked = CreditAdjustmentIn(amount=amount, reason=note)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        balance = asyncio.run(_grant(_settings(), email, checked.amount, checked.reason))
    except PixelFleetError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"granted {amount} credits to {email}; balance is now {balance}")


async def _seed(
    settings: Settings, email: str, password: Callable[[], str | None]
) -> tuple[bool, bool]:
    """Whether the administrator was created, and whether the packs are on sale."""
    from pixelfleet.admin.seed import seed_first_admin

    async def seed(ctx: ProcessContext, session: AsyncSession) -> tuple[bool, bool]:
        created = await seed_first_admin(
            session, email, password, signup_credits=settings.signup_credits
        )
        return created, ctx.payments is not None

    return await _in_transaction(settings, seed)


@admin.command()
@click.option(
    "--admin-email",
    envvar="PIXELFLEET_SEED_ADMIN_EMAIL",
    required=True,
    help="The first administrator's email.",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the administrator's password from standard input (else from "
    "PIXELFLEET_SEED_ADMIN_PASSWORD, else a prompt); needed only when the account is created.",
)
def seed(admin_email: str, password_stdin: bool) -> None:
    """Prepare an installation, idempotently (safe at every deploy): migrate the database,
    check the credit packs on sale (they come from PIXELFLEET_CREDIT_PACKS), and create the
    first administrator unless that account exists."""
    from pixelfleet.errors import PixelFleetError

    def password() -> str | None:
        if password_stdin:
            return sys.stdin.readline().rstrip("\n")
        given = os.environ.get("PIXELFLEET_SEED_ADMIN_PASSWORD")
        if given is None and sys.stdin.isatty():
            return str(
                click.prompt("Administrator's password", hide_input=True, confirmation_prompt=True)
            )
        return given

    settings = _settings()
    asyncio.run(_migrate(settings))
    try:
        created, on_sale = asyncio.run(_seed(settings, admin_email, password))
    except PixelFleetError as exc:
        raise click.ClickException(exc.detail) from exc
    for pack in settings.credit_packs:
        click.echo(
            f"pack {pack.id}: {pack.credits} credits for {pack.amount / 100:.2f} {pack.currency}"
        )
    if not on_sale:
        click.echo("payments are not configured: the packs are not on sale yet")
    click.echo(f"{'created' if created else 'kept'} the administrator {admin_email}")


async def _audit(settings: Settings) -> LedgerAudit:
    from pixelfleet.context import create_context
    from pixelfleet.credits.service import audit_ledger

    ctx = create_context(settings)
    try:
        async with ctx.read_sessions() as session:
            return await audit_ledger(session)
    finally:
        await ctx.close()


@admin.command()
def audit() -> None:
    """Check that every balance equals the sum of its ledger and none is below zero (read
    only: safe on a live database). Exits 1 and lists the accounts that do not."""
    result = asyncio.run(_audit(_settings()))
    click.echo(f"checked {result.users} accounts and {result.entries} ledger entries")
    if result.balanced:
        click.echo("every balance equals the sum of its ledger")
        return
    for finding in result.findings:
        click.echo(
            f"{finding.email} ({finding.user_id}): balance {finding.balance}, "
            f"ledger sum {finding.ledger_sum}",
            err=True,
        )
    raise click.ClickException(f"{len(result.findings)} account(s) off their ledger")
