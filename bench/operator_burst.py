"""A burst of ImageJobs for the operator: how long it takes to reconcile them, and that each
task is sent to the workers exactly once.

Each round submits N tasks through the API (in this process, with the `kubernetes` launcher:
one ImageJob each, in kmock's emulated Kubernetes API, `tests/harness/kubernetes.py`), then
starts a real `pixelfleet operator` (real PostgreSQL and Redis, no worker: the messages stay in
the queue to be counted) and times it from its startup hook until every ImageJob's phase is
`Queued`. A small burst runs first, as the yardstick, then the large one, each on fresh servers.

    uv run --locked --group test python bench/operator_burst.py [--jobs 200] [--small 20] [--quick]

Prints a row per burst, then `ratio NAME VALUE` lines: `seconds_per_job_large_vs_small` (how
the cost of one ImageJob grows with the burst; 1.0 is linear) and, for each burst,
`messages_per_job_N` (the Celery messages sent per task: 1.000 means no duplicate dispatch and
none lost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
from redis import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pixelfleet.api.app import create_app
from pixelfleet.bootstrap import create_context
from pixelfleet.db import create_engine
from pixelfleet.schema_migrations import upgrade_to_head
from pixelfleet.settings import Settings
from pixelfleet.worker.names import priority_lists
from tests.api_helpers import image_bytes, sign_up, submit
from tests.harness.celery import CeleryProcess
from tests.harness.kubernetes import EmulatedCluster
from tests.harness.ports import free_port
from tests.harness.postgres import PostgresServer
from tests.harness.redis import RedisServer

NAMESPACE = "default"
QUICK = {
    "operations": [{"op": "thumbnail", "width": 64, "height": 64}],
    "output": {"format": "webp"},
}


@dataclass
class Burst:
    jobs: int
    seconds: float
    messages: int
    duplicates: int
    missing: int


async def one_burst(jobs: int, postgres: PostgresServer, directory: Path) -> Burst:
    name = f"burst_{uuid.uuid4().hex[:12]}"
    database_url = await postgres.create_database(name)
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    await engine.dispose()
    redis = RedisServer.start()
    cluster = EmulatedCluster(namespaces=(NAMESPACE,)).start()
    os.environ["KUBECONFIG"] = str(cluster.kubeconfig(directory))
    settings = Settings(
        data_dir=directory / "data",
        database_url=database_url,
        jwt_secret="bench-" + "k" * 58,
        launcher="kubernetes",
        kubernetes_namespace=NAMESPACE,
        redis_url=redis.url,
        celery_queue=f"bench-{uuid.uuid4().hex[:12]}",
        storage_url=f"file://{directory / 'files'}",
        operator_resync_seconds=300.0,
        operator_liveness_port=free_port(),
        operator_metrics_port=free_port(),
        signup_credits=10 * jobs,
        max_active_tasks_per_user=jobs,
        dispatch_ahead=jobs,  # every job handed out at once: the operator's own cost is measured
        rate_limits_enabled=False,
    )
    ctx = create_context(settings)
    operator: CeleryProcess | None = None
    try:
        transport = httpx.ASGITransport(app=create_app(ctx=ctx))
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as http:
            headers = await sign_up(http, "burst@example.com")
            image = image_bytes(size=(32, 32))
            ids = [(await submit(http, headers, QUICK, image)).json()["id"] for _ in range(jobs)]
        operator = CeleryProcess.start(
            settings, directory / "operator.log", "operator", ready_mark="operator started"
        )
        started = time.perf_counter()

        def all_queued() -> bool:
            try:
                found = cluster.objects("imagejobs", NAMESPACE)
            except TimeoutError:  # the emulated API server is busy with the burst: ask again
                return False
            return len(found) == jobs and all(
                (job.get("status") or {}).get("phase") == "Queued" for job in found
            )

        await asyncio.to_thread(EmulatedCluster.wait, all_queued, 30 + 3 * jobs, 0.2)
        seconds = time.perf_counter() - started
        broker = Redis.from_url(redis.url)
        sent = Counter(
            json.loads(message)["headers"]["id"]
            for key in priority_lists(settings.celery_queue)
            for message in broker.lrange(key, 0, -1)
        )
        broker.close()
    finally:
        if operator is not None:
            operator.stop()
        await ctx.close()
        cluster.stop()
        redis.stop()
        await postgres.drop_database(name)
    return Burst(
        jobs=jobs,
        seconds=seconds,
        messages=sum(sent.values()),
        duplicates=sum(count - 1 for count in sent.values()),
        missing=len(set(ids) - set(sent)),
    )


async def run(sizes: list[int]) -> list[Burst]:
    postgres = PostgresServer.start()
    try:
        bursts = []
        for jobs in sizes:
            with tempfile.TemporaryDirectory(prefix="pixelfleet-burst-") as tmp:
                bursts.append(await one_burst(jobs, postgres, Path(tmp)))
        return bursts
    finally:
        postgres.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200, help="the large burst")
    parser.add_argument("--small", type=int, default=20, help="the yardstick burst")
    parser.add_argument(
        "--quick", action="store_true", help="bursts of 2 and 4: a check that it runs"
    )
    args = parser.parse_args()
    if args.quick:
        args.small, args.jobs = 2, 4
    os.environ.setdefault("PIXELFLEET_PASSWORD_HASHING", "cheapest")
    small, large = asyncio.run(run([args.small, args.jobs]))
    print(f"operator burst: ImageJobs reconciled to Queued, {os.cpu_count()} cores")
    print(
        f"{'jobs':>6} {'seconds':>8} {'jobs/s':>8} {'messages':>9} {'duplicates':>11} "
        f"{'missing':>8}"
    )
    for burst in (small, large):
        print(
            f"{burst.jobs:6d} {burst.seconds:8.2f} {burst.jobs / burst.seconds:8.1f} "
            f"{burst.messages:9d} {burst.duplicates:11d} {burst.missing:8d}"
        )
    per_job_small = small.seconds / small.jobs
    per_job_large = large.seconds / large.jobs
    print(f"ratio seconds_per_job_large_vs_small {per_job_large / per_job_small:.3f}")
    for burst in (small, large):
        print(f"ratio messages_per_job_{burst.jobs} {burst.messages / burst.jobs:.3f}")


if __name__ == "__main__":
    main()
