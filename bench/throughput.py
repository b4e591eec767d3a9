"""Celery mode's throughput against the bare image work, on the same cores.

Baseline: the same 12 MP JPEGs turned into 512 px thumbnails by `run_pipeline` in a plain
process pool, one process per core, images already in memory, results thrown away.
Ours: the same images uploaded over HTTP to `pixelfleet api` (PostgreSQL, Redis, the Celery
launcher), run by `pixelfleet worker` (one pool process per core), results stored; timed from
the first upload until the last task has succeeded (by the database's clock). The API, the
servers and the client share the cores with the workers, so everything they cost counts.

    uv run --group test --group bench python bench/throughput.py [--tasks N] [--quick]

`--quick` runs 4 tasks of a 640x480 JPEG with one warm-up task: it checks that the benchmark runs.

Prints a table, then `ratio pipeline_vs_inprocess VALUE` (ours / baseline throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import asyncpg
import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from common import (  # noqa: E402  (bench/common.py, beside this file)
    cpu_seconds_by_root,
    photo_jpeg,
    sign_up,
    start_api,
    submit,
)

from pixelfleet.db import create_engine  # noqa: E402
from pixelfleet.imaging.limits import ImageLimits  # noqa: E402
from pixelfleet.imaging.runner import run_pipeline  # noqa: E402
from pixelfleet.imaging.spec import Pipeline, parse_pipeline  # noqa: E402
from pixelfleet.schema_migrations import upgrade_to_head  # noqa: E402
from pixelfleet.settings import Settings  # noqa: E402
from tests.harness.celery import CeleryProcess  # noqa: E402
from tests.harness.postgres import PostgresServer  # noqa: E402
from tests.harness.redis import RedisServer  # noqa: E402

PIPELINE = {
    "operations": [{"op": "thumbnail", "width": 512, "height": 512}],
    "output": {"format": "jpeg", "quality": 85},
}
CLIENTS = 4
DISTINCT_IMAGES = 6
WARMUP_TASKS = 4


def make_images(count: int, size: tuple[int, int] = (4000, 3000)) -> list[bytes]:
    # Grainier than the imaging benchmark's photos: the size of a phone camera's 12 MP JPEG.
    distinct = [photo_jpeg(*size, seed, grain=0.25) for seed in range(DISTINCT_IMAGES)]
    return [distinct[i % DISTINCT_IMAGES] for i in range(count)]


# ------------------------------------------------------------------------------ the baseline

_pipeline: Pipeline | None = None


def _load_pipeline() -> None:
    global _pipeline
    _pipeline = parse_pipeline(json.dumps(PIPELINE), ImageLimits())


def _thumbnail(data: bytes) -> int:
    assert _pipeline is not None
    return len(run_pipeline(data, _pipeline, ImageLimits())["default"].data)


def in_process(images: list[bytes], cores: int) -> float:
    with multiprocessing.get_context("spawn").Pool(cores, initializer=_load_pipeline) as pool:
        pool.map(_thumbnail, images[: cores * 2], chunksize=1)  # warm every process
        started = time.perf_counter()
        pool.map(_thumbnail, images, chunksize=1)
        return time.perf_counter() - started


# ----------------------------------------------------------------------------- the platform


def _submit_all(http: httpx.Client, headers: dict[str, str], images: list[bytes]) -> list[str]:
    # A few clients at once, as an application's users would upload.
    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(lambda image: submit(http, headers, image, PIPELINE), images))


async def _wait_until_done(dsn: str, ids: list[str]) -> list[tuple[float, float]]:
    """Waits until every task is final; returns (created, finished) epoch seconds of each."""
    connection = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            rows = await connection.fetch(
                "SELECT status, created_at, finished_at FROM tasks WHERE id = ANY($1::uuid[])",
                ids,
            )
            if all(row["status"] in ("succeeded", "failed", "cancelled") for row in rows):
                failed = [row for row in rows if row["status"] != "succeeded"]
                if failed:
                    raise SystemExit(f"{len(failed)} task(s) did not succeed")
                return [
                    (row["created_at"].timestamp(), row["finished_at"].timestamp()) for row in rows
                ]
            await asyncio.sleep(0.1)
    finally:
        await connection.close()
    raise SystemExit("the tasks did not finish in time")


def through_celery(
    images: list[bytes], cores: int, work_dir: Path, warmup: int = WARMUP_TASKS
) -> tuple[float, list[float], dict[str, float]]:
    with ExitStack() as stack:
        postgres = PostgresServer.start()
        stack.callback(postgres.stop)
        redis = RedisServer.start()
        stack.callback(redis.stop)
        settings = Settings(
            data_dir=work_dir / "data",
            database_url=postgres.url("postgres"),
            redis_url=redis.url,
            launcher="celery",
            storage_url=f"file://{work_dir / 'files'}",
            jwt_secret="benchmark-" + "k" * 40,
            signup_credits=1_000_000,  # the most the settings allow; far more than a run spends
            max_active_tasks_per_user=1_000_000,  # the whole run is queued at once
        )
        engine = create_engine(settings.resolved_database_url)
        asyncio.run(_migrate(engine))
        api, base_url = start_api(settings, work_dir / "api.log")
        stack.callback(api.wait, 30)
        stack.callback(api.terminate)
        worker = CeleryProcess.worker(settings, work_dir / "worker.log", concurrency=cores)
        stack.callback(worker.stop)
        http = stack.enter_context(httpx.Client(base_url=base_url, timeout=120))
        headers = sign_up(http)
        dsn = postgres.admin_dsn

        warm = _submit_all(http, headers, images[:warmup])
        asyncio.run(_wait_until_done(dsn, warm))

        parts = {
            "workers": worker.process.pid,
            "API": api.pid,
            "PostgreSQL": postgres.postmaster_pid,
            "Redis": redis.pid,
            "client (this process)": os.getpid(),
        }
        before = cpu_seconds_by_root(parts)
        started = time.time()
        ids = _submit_all(http, headers, images)
        times = asyncio.run(_wait_until_done(dsn, ids))
        elapsed = max(finished for _, finished in times) - started
        after = cpu_seconds_by_root(parts)
        cpu = {name: after[name] - before[name] for name in parts}
        return elapsed, [finished - created for created, finished in times], cpu


async def _migrate(engine: object) -> None:
    await upgrade_to_head(engine)  # type: ignore[arg-type]
    await engine.dispose()  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=80)
    parser.add_argument("--quick", action="store_true", help="4 small tasks: a check that it runs")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    size = (640, 480) if args.quick else (4000, 3000)
    if args.quick:
        args.tasks = 4
    images = make_images(args.tasks, size)
    megabytes = sum(map(len, images)) / len(images) / 1e6

    baseline = in_process(images, cores)
    # Files on a RAM disk where there is one: the benchmark measures the platform, not the disk
    # of the machine it runs on.
    ram_disk = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=ram_disk) as tmp:
        ours, latencies, cpu = through_celery(
            images, cores, Path(tmp), warmup=1 if args.quick else WARMUP_TASKS
        )

    print(
        f"{args.tasks} tasks: {size[0]}x{size[1]} JPEG ({megabytes:.1f} MB) -> 512 px JPEG,"
        f" {cores} cores"
    )
    print(f"{'path':44} {'seconds':>8} {'tasks/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"{'in-process pool (baseline)':44} {baseline:8.2f} {args.tasks / baseline:8.1f}")
    p50 = statistics.median(latencies) * 1000
    p95 = statistics.quantiles(latencies, n=20)[-1] * 1000
    print(
        f"{'API -> Redis -> Celery workers -> done':44} {ours:8.2f} {args.tasks / ours:8.1f}"
        f" {p50:8.0f} {p95:8.0f}"
    )
    print("(p50/p95: queue-to-done latency of each task, from its creation to its result)")
    print()
    print(f"{'CPU per task, by part':44} {'ms':>8}")
    print(f"{'in-process pool (baseline)':44} {baseline * cores / args.tasks * 1000:8.1f}")
    for name, seconds in cpu.items():
        print(f"{'  ' + name:44} {seconds / args.tasks * 1000:8.1f}")
    print(f"ratio pipeline_vs_inprocess {baseline / ours:.3f}")


if __name__ == "__main__":
    main()
