"""What PostgreSQL's row-level security costs a user's request: the statement that takes the
API's role and names the caller at the start of each transaction, and the policy each query of
an owned table then also checks.

A real PostgreSQL server (started here, on a free loopback port) holds the migrated schema and
1,000 tasks of each of 20 users. Each transaction reads one user's newest page of 20 tasks with
its owner filter, as `GET /v1/tasks` does. Baseline: as the tables' owner (no policy, no extra
statement: what the worker does, and what the API did before row-level security). Ours: as the
API does for a user, inside `row_security.acting_as`. Same engine, same queries, alternating
rounds; the best round of each is kept.

    python3 -m uv run --locked --group test python bench/row_security_overhead.py \
        [--transactions N] [--quick]

Prints a table, then `ratio NAME VALUE` lines (ours / baseline transactions per second: 1.0
means the wall costs nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.ext.asyncio import AsyncEngine

from pixelfleet import row_security
from pixelfleet.db import (
    create_engine,
    create_read_session_factory,
    create_session_factory,
    utcnow,
)
from pixelfleet.jobs.repository import TaskRepository
from pixelfleet.models import Task, User
from pixelfleet.schema_migrations import upgrade_to_head
from tests.harness.postgres import PostgresServer

USERS = 20
TASKS_PER_USER = 1_000
PAGE = 20
ROUNDS = 5


async def _fill(engine: AsyncEngine, tasks_per_user: int) -> list[uuid.UUID]:
    sessions = create_session_factory(engine)
    users = [uuid.uuid4() for _ in range(USERS)]
    start = utcnow()
    async with sessions() as session, session.begin():
        for user_id in users:
            session.add(
                User(
                    id=user_id,
                    email=f"{user_id}@example.com",
                    password_hash="x",
                    role="user",
                    balance=0,
                )
            )
        await session.flush()
        for index in range(tasks_per_user):
            for user_id in users:
                session.add(
                    Task(
                        user_id=user_id,
                        status="succeeded",
                        progress=100,
                        stage="done",
                        cost=1,
                        pipeline={},
                        source_key="k",
                        source_format="jpeg",
                        source_width=1,
                        source_height=1,
                        source_bytes=1,
                        created_at=start + timedelta(seconds=index),
                    )
                )
    return users


async def _round(
    engine: AsyncEngine, users: list[uuid.UUID], transactions: int, as_user: bool
) -> float:
    sessions = create_read_session_factory(engine)
    rng = random.Random(7)
    began = time.perf_counter()
    for _ in range(transactions):
        user_id = rng.choice(users)
        with row_security.acting_as(user_id if as_user else None):
            async with sessions() as session:
                page = await TaskRepository.from_session(session).page_views_for_user(
                    user_id, status=None, after=None, limit=PAGE
                )
                assert len(page) == PAGE
    return transactions / (time.perf_counter() - began)


async def _main(transactions: int, tasks_per_user: int) -> None:
    row_security.install()
    server = PostgresServer.start()
    try:
        engine = create_engine(await server.create_database("bench"))
        await upgrade_to_head(engine)
        users = await _fill(engine, tasks_per_user)
        best = {"owner": 0.0, "api role": 0.0}
        for _ in range(ROUNDS):
            best["owner"] = max(best["owner"], await _round(engine, users, transactions, False))
            best["api role"] = max(
                best["api role"], await _round(engine, users, transactions, True)
            )
        await engine.dispose()
    finally:
        server.stop()
    print(f"{'variant':<12} {'transactions/s':>15} {'ms each':>9}")
    for name, rate in best.items():
        print(f"{name:<12} {rate:>15.0f} {1000 / rate:>9.3f}")
    print(f"added per transaction: {1000 / best['api role'] - 1000 / best['owner']:.3f} ms")
    print(f"ratio rls_vs_owner {best['api role'] / best['owner']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=2000)
    parser.add_argument(
        "--quick", action="store_true", help="50 tasks per user, 50 transactions: it runs"
    )
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.transactions = 50
    asyncio.run(
        _main(arguments.transactions, 50 if arguments.quick else TASKS_PER_USER)
    )


if __name__ == "__main__":
    main()
