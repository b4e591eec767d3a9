"""The long-running parts of the celery and kubernetes modes: API, worker, beat, operator."""

from __future__ import annotations

import os

import click
import uvicorn

from pixelfleet.cli.configuration import load_settings
from pixelfleet.cli.schema import require_usable_schema
from pixelfleet.settings import Settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
def api(host: str, port: int) -> None:
    """Run the API alone (celery and kubernetes modes)."""
    from pixelfleet.api.app import create_app
    from pixelfleet.observability.logging import configure_logging

    configure_logging()
    settings = load_settings()
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
    settings = load_settings()
    if not settings.redis_url:
        raise click.ClickException(
            f"`pixelfleet {command}` needs PIXELFLEET_REDIS_URL (the broker)"
        )
    require_usable_schema(settings)
    return settings


@click.command()
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


@click.command()
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


@click.command()
@click.option("--namespace", "-n", "namespaces", multiple=True, help="Watch this namespace.")
@click.option("--all-namespaces", "-A", is_flag=True, help="Watch every namespace (default).")
def operator(namespaces: tuple[str, ...], all_namespaces: bool) -> None:
    """Run the Kopf operator that reconciles ImageJobs (admitting those applied by hand under
    their namespace's CreditBinding), keeps CreditBindings' spend and scales WorkerPools
    (in-cluster credentials, else KUBECONFIG);
    its liveness probe answers on PIXELFLEET_OPERATOR_LIVENESS_PORT at /healthz."""
    from pixelfleet.observability.logging import configure_logging

    configure_logging()
    settings = load_settings()
    if not settings.redis_url:
        raise click.ClickException("`pixelfleet operator` needs PIXELFLEET_REDIS_URL")
    require_usable_schema(settings)
    import kopf

    # Importing the handler modules registers them.
    import pixelfleet.operator.creditbindings
    import pixelfleet.operator.imagejobs
    import pixelfleet.operator.workerpools  # noqa: F401

    kopf.run(
        standalone=True,
        clusterwide=all_namespaces or not namespaces,
        namespaces=list(namespaces),
        liveness_endpoint=f"http://0.0.0.0:{settings.operator_liveness_port}/healthz",
    )


@click.command("release-imagejobs")
@click.option(
    "--namespace",
    "-n",
    "namespaces",
    multiple=True,
    required=True,
    help="A namespace the operator watches (the first: the operator's own).",
)
@click.option("--operator-deployment", help="The operator's Deployment, stopped before the end.")
@click.option("--wait-seconds", default=60.0, show_default=True, type=click.FloatRange(0))
def release_imagejobs(
    namespaces: tuple[str, ...], operator_deployment: str | None, wait_seconds: float
) -> None:
    """Let go of every ImageJob before PixelFleet is uninstalled (the chart's pre-delete hook):
    the ones PixelFleet made are deleted (their unfinished tasks cancelled and refunded by the
    operator), the operator is stopped, and its finalizer is taken off whatever is left."""
    import asyncio

    from pixelfleet.observability.logging import configure_logging
    from pixelfleet.operator.cluster import ImageJobs, WorkerPools, load_api_client
    from pixelfleet.operator.release import release_imagejobs as release

    configure_logging()
    api_client = load_api_client()
    try:
        jobs = ImageJobs(api_client, namespaces[0])
        operator = (
            (WorkerPools(api_client, namespaces[0]), operator_deployment)
            if operator_deployment
            else None
        )
        released = asyncio.run(
            release(jobs, namespaces, operator=operator, wait_seconds=wait_seconds)
        )
    finally:
        api_client.close()  # type: ignore[no-untyped-call]
    click.echo(
        f"ImageJobs released: {released.deleted} deleted, "
        f"{released.unfinalized} finalizer(s) removed"
    )
