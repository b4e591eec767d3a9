"""Fair sharing between accounts: how long a small account's tasks wait for a worker while
another account's big batch is queued.

Celery mode, as `pixelfleet api` and `pixelfleet worker` run it (PostgreSQL, Redis, one pool
process per core). The small account submits its tasks one at a time, a few per second; each
one's wait is from its submission until a worker starts it, by the database's clock.

- alone: the small account's tasks with no other work;
- fair, beside a batch: a big account first queues its batch as fast as it can (N tasks, 10,000
  by default) and keeps queueing; once a tenth of it is in, the small account submits its tasks;
- first in, first out, beside the same batch: `PIXELFLEET_DISPATCH_AHEAD` so large that every
  task is handed to the broker at once, which is what the broker alone would do.

Every task is the same small resize. The stated bound: a task of an account with nothing in
flight waits behind at most `PIXELFLEET_DISPATCH_AHEAD` tasks handed out before it, plus those
running, whatever another account has queued.

    uv run --locked --group test python bench/fair_share.py [--batch N] [--quick]

`--quick` queues a batch of 300 and times 6 small tasks: it checks that the benchmark runs.

Prints a table of the small account's waits, then `ratio NAME VALUE` lines:
`fair_small_p95_wait_with_vs_without_batch` (its p95 wait beside the batch / alone: near 1 is
fair) and `fifo_vs_fair_small_p95_wait_with_batch` (first in first out's p95 / fair's: what
fair sharing buys).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from PIL import Image

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from pixelfleet.settings import Settings  # noqa: E402
from tests.harness.celery import CeleryProcess, settings_env  # noqa: E402
from tests.harness.ports import free_port  # noqa: E402
from tests.harness.postgres import PostgresServer  # noqa: E402
from tests.harness.redis import RedisServer  # noqa: E402

PIPELINE = {"operations": [{"op": "resize", "width": 48}], "output": {"format": "png"}}
PASSWORD = "benchmark-password-1"
SUBMITTERS = 6  # the big account's clients
SMALL_EVERY_SECONDS = 0.25


def _picture() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 80, 40)).save(out, "PNG")
    return out.getvalue()


PICTURE = _picture()


@dataclass
class Scenario:
    name: str
    batch: int
    dispatch_ahead: int


def _account(http: httpx.Client, email: str) -> dict[str, str]:
    registered = http.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 202, registered.text
    token = http.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def _submit(http: httpx.Client, headers: dict[str, str]) -> str:
    response = http.post(
        "/v1/tasks",
        headers=headers,
        files={"file": ("p.png", PICTURE, "image/png")},
        data={"pipeline": json.dumps(PIPELINE)},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _start_api(settings: Settings, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pixelfleet", "api", "--port", str(port)],
            env=settings_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/readyz").status_code == 200:
                return process, base_url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the API did not start:\n{log.read_text()}")


async def _waits(dsn: str, ids: list[str], within: float = 1800) -> list[float]:
    """Once every task of `ids` has started: each one's wait (started - created), seconds."""
    connection = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            rows = await connection.fetch(
                "SELECT created_at, started_at FROM tasks WHERE id = ANY($1::uuid[])", ids
            )
            if len(rows) == len(ids) and all(row["started_at"] for row in rows):
                return [(row["started_at"] - row["created_at"]).total_seconds() for row in rows]
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
) -> list[float]:
    database = f"fair_{uuid.uuid4().hex[:12]}"
    database_url = asyncio.run(postgres.create_database(database))
    directory = work_dir / scenario.name.replace(" ", "-").replace(",", "")
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
        api, base_url = _start_api(settings, directory / "api.log")
        stack.callback(api.wait, 30)
        stack.callback(api.terminate)
        worker = CeleryProcess.worker(settings, directory / "worker.log", concurrency=cores)
        stack.callback(worker.stop)
        http = stack.enter_context(
            httpx.Client(
                base_url=base_url,
                timeout=120,
                limits=httpx.Limits(max_connections=SUBMITTERS + 2),
            )
        )
        small = _account(http, "small@example.com")
        submitted = 0
        lock = threading.Lock()
        stop = threading.Event()
        if scenario.batch:
            big = _account(http, "big@example.com")

            def submit_batch() -> None:
                nonlocal submitted
                while not stop.is_set():
                    with lock:
                        if submitted >= scenario.batch:
                            return
                        submitted += 1
                    _submit(http, big)

            pool = stack.enter_context(ThreadPoolExecutor(SUBMITTERS))
            stack.callback(stop.set)  # before the pool is shut down (callbacks run backwards)
            for _ in range(SUBMITTERS):
                pool.submit(submit_batch)
            while submitted < scenario.batch // 10:
                time.sleep(0.05)
        ids = []
        for _ in range(small_tasks):
            ids.append(_submit(http, small))
            time.sleep(SMALL_EVERY_SECONDS)
        waits = asyncio.run(_waits(database_url.replace("+asyncpg", ""), ids))
        stop.set()
    return waits


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
        Scenario("first in first out, beside a batch", batch, 1_000_000),
    ]
    results: dict[str, list[float]] = {}
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
    print(f"{'scenario':<38}{'p50 s':>10}{'p95 s':>10}{'max s':>10}")
    for name, waits in results.items():
        print(
            f"{name:<38}{statistics.median(waits):>10.3f}{_percentile(waits, 95):>10.3f}"
            f"{max(waits):>10.3f}"
        )
    alone = _percentile(results["alone"], 95)
    fair = _percentile(results["fair, beside a batch"], 95)
    fifo = _percentile(results["first in first out, beside a batch"], 95)
    print(f"ratio fair_small_p95_wait_with_vs_without_batch {fair / max(alone, 1e-3):.3f}")
    print(f"ratio fifo_vs_fair_small_p95_wait_with_batch {fifo / max(fair, 1e-3):.3f}")


if __name__ == "__main__":
    main()
