"""Fair sharing between accounts: how long a small account's tasks wait for a worker while
another account's big batch is queued.

Celery mode, as `pixelfleet api` and `pixelfleet worker` run it (PostgreSQL, Redis, one pool
process per core). The small account submits its tasks one at a time, a few per second; each
one's wait is from its submission until a worker starts it, by the database's clock.

- alone: the small account's tasks with no other work;
- fair, beside a batch: a big account first queues its batch (N tasks, 10,000 by default) before
  any worker runs; then the workers start, and the small account submits its tasks;
- first in, first out, beside the same batch: `PIXELFLEET_DISPATCH_AHEAD` at its largest
  (100,000), so that every task is handed to the broker at once, as the broker alone would.

Every task is the same small resize. The stated bound: a task of an account with nothing in
flight waits behind at most `PIXELFLEET_DISPATCH_AHEAD` tasks handed out before it, plus those
running, whatever another account has queued.

    uv run --locked --group test python bench/fair_share.py [--batch N] [--quick]

`--quick` queues a batch of 300 and times 6 small tasks: it checks that the benchmark runs.

Prints a table of the small account's waits and the workers' pace, then `ratio NAME VALUE`
lines: `fair_small_p95_wait_with_vs_without_batch` (its p95 wait beside the batch / alone: the
batch's cost to it, bounded, not its size), `fair_small_p95_wait_vs_stated_bound` (its p95
beside the batch / the stated bound in seconds at the workers' pace: at most about 1) and
`fifo_vs_fair_small_p95_wait_with_batch` (first in first out's p95 / fair's: what fair sharing
buys; it grows with the batch).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from common import photo_jpeg, sign_up, start_api, submit  # noqa: E402  (bench/common.py, beside this file)

from pixelfleet.settings import Settings  # noqa: E402
from tests.harness.celery import CeleryProcess, settings_env  # noqa: E402
from tests.harness.ports import free_port  # noqa: E402
from tests.harness.postgres import PostgresServer  # noqa: E402
from tests.harness.redis import RedisServer  # noqa: E402

PIPELINE = {"operations": [{"op": "resize", "width": 48}], "output": {"format": "png"}}
SUBMITTERS = 6  # the big account's clients
SMALL_EVERY_SECONDS = 0.25


# A tiny JPEG (common.submit sends JPEGs), the same for every task.
PICTURE = photo_jpeg(64, 48, seed=1)


@dataclass
class Scenario:
    name: str
    batch: int
    dispatch_ahead: int


@dataclass
class Measured:
    waits: list[float]
    """Each small task's wait (started - created), seconds."""
    starts_per_second: float
    """How fast the workers started tasks (of any account) while the small ones were timed."""


async def _measured(dsn: str, ids: list[str], within: float = 1800) -> Measured:
    """Once every task of `ids` has started: their waits, and the workers' pace meanwhile."""
    connection = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            rows = await connection.fetch(
                "SELECT created_at, started_at FROM tasks WHERE id = ANY($1::uuid[])", ids
            )
            if len(rows) == len(ids) and all(row["started_at"] for row in rows):
                first = min(row["created_at"] for row in rows)
                last = max(row["started_at"] for row in rows)
                started = await connection.fetchval(
                    "SELECT count(*) FROM tasks WHERE started_at BETWEEN $1 AND $2", first, last
                )
                return Measured(
                    [(row["started_at"] - row["created_at"]).total_seconds() for row in rows],
                    started / max((last - first).total_seconds(), 1e-3),
                )
            await asyncio.sleep(0.2)
    finally:
        await connection.close()
    raise SystemExit("the small account's tasks did not start in time")


def run(
    scenario: Scenario,
    small_tasks: int,
    postgres: PostgresServer,
    redis: RedisServer,
    work_dir: Path,
    cores: int,
) -> Measured:
    database = f"fair_{uuid.uuid4().hex[:12]}"
    database_url = asyncio.run(postgres.create_database(database))
    directory = work_dir / scenario.name.replace(" ", "-").replace(",", "")
    directory.mkdir(parents=True)
    settings = Settings(
        data_dir=directory / "data",
        database_url=database_url,
        redis_url=redis.url,
        celery_queue=f"fair-{uuid.uuid4().hex[:8]}",
        launcher="celery",
        storage_url=f"file://{directory / 'files'}",
        jwt_secret="benchmark-" + "k" * 40,
        signup_credits=1_000_000,
        max_active_tasks_per_user=1_000_000,
        rate_limits_enabled=False,
        dispatch_ahead=scenario.dispatch_ahead,
        worker_metrics_port=free_port(),
    )
    subprocess.run(
        [sys.executable, "-m", "pixelfleet", "migrate"],
        env=settings_env(settings),
        check=True,
        capture_output=True,
    )
    with ExitStack() as stack:
        api, base_url = start_api(settings, directory / "api.log")
        stack.callback(api.wait, 30)
        stack.callback(api.terminate)
        http = stack.enter_context(
            httpx.Client(
                base_url=base_url,
                timeout=120,
                limits=httpx.Limits(max_connections=SUBMITTERS + 2),
            )
        )
        small = sign_up(http, "small@example.com")
        if scenario.batch:
            # The batch is queued before any worker runs: a backlog as deep as the batch.
            big = sign_up(http, "big@example.com")
            with ThreadPoolExecutor(SUBMITTERS) as pool:
                batch = [PICTURE] * scenario.batch
                list(pool.map(lambda image: submit(http, big, image, PIPELINE), batch))
        worker = CeleryProcess.worker(settings, directory / "worker.log", concurrency=cores)
        stack.callback(worker.stop)
        time.sleep(1.0)  # the workers are under way
        ids = []
        for _ in range(small_tasks):
            ids.append(submit(http, small, PICTURE, PIPELINE))
            time.sleep(SMALL_EVERY_SECONDS)
        measured = asyncio.run(_measured(database_url.replace("+asyncpg", ""), ids))
    return measured


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=40, help="the small account's tasks")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    batch, small = (300, 6) if args.quick else (args.batch, args.small)
    cores = os.cpu_count() or 2
    ahead = Settings.model_fields["dispatch_ahead"].default
    scenarios = [
        Scenario("alone", 0, ahead),
        Scenario("fair, beside a batch", batch, ahead),
        Scenario("first in first out, beside a batch", batch, 100_000),
    ]
    results: dict[str, Measured] = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as work:
        postgres = PostgresServer.start()
        stack.callback(postgres.stop)
        redis = RedisServer.start()
        stack.callback(redis.stop)
        for scenario in scenarios:
            results[scenario.name] = run(scenario, small, postgres, redis, Path(work), cores)
    print(
        f"small account's wait for a worker ({small} tasks; batch of {batch}; "
        f"dispatch_ahead {ahead}; {cores} pool processes)"
    )
    print(f"{'scenario':<38}{'p50 s':>9}{'p95 s':>9}{'max s':>9}{'starts/s':>10}")
    for name, measured in results.items():
        waits = measured.waits
        print(
            f"{name:<38}{statistics.median(waits):>9.3f}{_percentile(waits, 95):>9.3f}"
            f"{max(waits):>9.3f}{measured.starts_per_second:>10.1f}"
        )
    fairly = results["fair, beside a batch"]
    alone = _percentile(results["alone"].waits, 95)
    fair = _percentile(fairly.waits, 95)
    fifo = _percentile(results["first in first out, beside a batch"].waits, 95)
    # The stated bound, in seconds at the pace the workers kept: the tasks handed out ahead,
    # plus one running per pool process, started one after another.
    bound = (ahead + cores) / max(fairly.starts_per_second, 1e-3)
    print(f"stated bound beside the batch: ({ahead} ahead + {cores} running) / pace: {bound:.3f} s")
    print(f"ratio fair_small_p95_wait_with_vs_without_batch {fair / max(alone, 1e-3):.3f}")
    print(f"ratio fair_small_p95_wait_vs_stated_bound {fair / bound:.3f}")
    print(f"ratio fifo_vs_fair_small_p95_wait_with_batch {fifo / max(fair, 1e-3):.3f}")


if __name__ == "__main__":
    main()
