"""How task events reach an API process: in the embedded mode, datagrams on a local socket
(SQLite, one machine) and PostgreSQL's notifications (several machines on one database); with
Redis, one reader of its stream per process. Each is checked with real parts: other processes
publish, the harness's PostgreSQL and Redis carry."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from pixelfleet.db import create_engine
from pixelfleet.events import TaskEvent
from pixelfleet.events.hub import EventHub, TaskWatch
from pixelfleet.events.local_socket import LocalSocketEvents, channel_addresses
from pixelfleet.events.postgres_notify import PostgresNotifyEvents, listener_dsn
from pixelfleet.events.redis_stream import RedisEventStream
from tests.harness.redis import RedisServer

KEY = "a-signing-key-" + "k" * 40
ARRIVES_WITHIN_SECONDS = 30.0


def event(task_id: uuid.UUID, status: str = "running", progress: int = 40) -> TaskEvent:
    return TaskEvent(
        task_id=task_id, user_id=uuid.uuid4(), status=status, progress=progress, stage="resize"
    )


async def arrived(watch: TaskWatch) -> TaskEvent:
    received = await watch.next(ARRIVES_WITHIN_SECONDS)
    assert received is not None, "no event arrived"
    return received


def send_as_another_user(datagram: bytes, address: str) -> None:
    """Sends `datagram` to `address` from a child process that runs as the user `nobody`."""
    nobody = pwd.getpwnam("nobody")
    child = os.fork()
    if child == 0:
        code = 1
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
                sender.sendto(datagram, address)
            code = 0
        finally:
            os._exit(code)
    _pid, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def publish_from_another_process(database_url: str, task_id: uuid.UUID) -> None:
    """Publishes one `succeeded` event from a separate Python process."""
    program = f"""
import asyncio, uuid
from pixelfleet.events import TaskEvent
from pixelfleet.events.local_socket import LocalSocketEvents, channel_addresses
channel = LocalSocketEvents(channel_addresses({database_url!r}, {KEY!r}))
event = TaskEvent(task_id=uuid.UUID({str(task_id)!r}), user_id=uuid.uuid4(), status="succeeded",
                  progress=100, stage=None)
asyncio.run(channel.publish(event))
"""
    subprocess.run(
        [sys.executable, "-c", program],
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )


async def test_an_event_published_by_another_process_reaches_every_listening_api_process(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'pixelfleet.db'}"
    first, second = EventHub(), EventHub()
    task_id = uuid.uuid4()
    channel = LocalSocketEvents(channel_addresses(database_url, KEY))
    async with channel.listening(first.deliver), channel.listening(second.deliver):
        with first.watch(task_id) as one, second.watch(task_id) as other:
            await asyncio.to_thread(publish_from_another_process, database_url, task_id)
            assert (await arrived(one)).status == "succeeded"
            assert (await arrived(other)).status == "succeeded"
    await channel.close()


async def test_deployments_on_other_databases_or_keys_hear_nothing_of_each_other(
    tmp_path: Path,
) -> None:
    ours = f"sqlite+aiosqlite:///{tmp_path / 'ours.db'}"
    theirs = f"sqlite+aiosqlite:///{tmp_path / 'theirs.db'}"
    assert set(channel_addresses(ours, KEY)).isdisjoint(channel_addresses(theirs, KEY))
    assert set(channel_addresses(ours, KEY)).isdisjoint(channel_addresses(ours, KEY + "2"))


async def test_event_datagrams_from_another_user_or_malformed_ones_are_ignored(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'pixelfleet.db'}"
    hub = EventHub()
    task_id = uuid.uuid4()
    addresses = channel_addresses(database_url, KEY)
    channel = LocalSocketEvents(addresses)
    async with channel.listening(hub.deliver):
        with hub.watch(task_id) as watch:
            # A local user who reads the bound name (it is visible in /proc/net/unix) and sends
            # a forged event to it, then garbage from this user.
            forged = event(task_id, "succeeded", 100).to_json().encode()
            send_as_another_user(forged, addresses[0])
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
                sender.sendto(b"not an event", addresses[0])
                sender.sendto(b'{"task_id": "x"}', addresses[0])
            await channel.publish(event(task_id, "running", 7))
            first = await arrived(watch)
            assert (first.status, first.progress) == ("running", 7)
    await channel.close()


async def test_publishing_with_no_api_process_listening_loses_only_the_event(
    tmp_path: Path,
) -> None:
    channel = LocalSocketEvents(channel_addresses(f"sqlite+aiosqlite:///{tmp_path}/x.db", KEY))
    await channel.publish(event(uuid.uuid4()))
    await channel.close()


@pytest.fixture
async def notify_channel(database_url: str) -> AsyncIterator[PostgresNotifyEvents]:
    engine = create_engine(database_url)
    try:
        yield PostgresNotifyEvents(engine, listener_dsn(database_url))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_postgresql_notifications_reach_every_listening_api_process(
    notify_channel: PostgresNotifyEvents,
) -> None:
    first, second = EventHub(), EventHub()
    task_id = uuid.uuid4()
    async with notify_channel.listening(first.deliver), notify_channel.listening(second.deliver):
        with first.watch(task_id) as one, second.watch(task_id) as other:
            await notify_channel.publish(event(task_id, "running", 55))
            await notify_channel.publish(event(task_id, "succeeded", 100))
            for watch in (one, other):
                assert [(await arrived(watch)).status for _ in range(2)] == [
                    "running",
                    "succeeded",
                ]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_listener_whose_connection_is_cut_listens_again(
    notify_channel: PostgresNotifyEvents,
) -> None:
    hub = EventHub()
    task_id = uuid.uuid4()
    async with notify_channel.listening(hub.deliver):
        async with notify_channel.engine.connect() as connection:
            cut = await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()"
                )
            )
            assert cut.scalars().all() == [True]
            await connection.commit()
        with hub.watch(task_id) as watch:
            # Until the listener is back, events are lost (the watchers' re-read repairs that):
            # publish until one arrives.
            async def publish_until_heard() -> TaskEvent:
                while True:
                    await notify_channel.publish(event(task_id, "succeeded", 100))
                    heard = await watch.next(0.5)
                    if heard is not None:
                        return heard

            heard = await asyncio.wait_for(publish_until_heard(), ARRIVES_WITHIN_SECONDS)
            assert heard.status == "succeeded"


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def redis_stream(redis_server: RedisServer) -> AsyncIterator[RedisEventStream]:
    redis = Redis.from_url(redis_server.url, socket_connect_timeout=5, socket_timeout=15)
    try:
        yield RedisEventStream(redis, max_length=1000, stream=f"events-{uuid.uuid4().hex}")
    finally:
        await redis.aclose()


async def test_many_watchers_of_the_redis_stream_cost_one_reader(
    redis_stream: RedisEventStream,
) -> None:
    hub = EventHub()
    task_id = uuid.uuid4()
    await redis_stream.publish(event(task_id, "running", 5))  # before listening: not replayed
    async with redis_stream.listening(hub.deliver):
        with contextlib.ExitStack() as watches:
            watchers = [watches.enter_context(hub.watch(task_id)) for _ in range(20)]
            await redis_stream.publish(event(task_id, "succeeded", 100))
            for watch in watchers:
                assert (await arrived(watch)).status == "succeeded"
            clients = await redis_stream.redis.client_list()
            assert [c["cmd"] for c in clients].count("xread") <= 1


async def test_a_redis_stream_reader_reads_on_after_redis_restarts(
    redis_server: RedisServer, redis_stream: RedisEventStream
) -> None:
    hub = EventHub()
    task_id = uuid.uuid4()
    async with redis_stream.listening(hub.deliver):
        redis_server.halt()
        redis_server.resume()
        with hub.watch(task_id) as watch:

            async def publish_until_heard() -> TaskEvent:
                while True:
                    await redis_stream.publish(event(task_id, "succeeded", 100))
                    heard = await watch.next(0.5)
                    if heard is not None:
                        return heard

            heard = await asyncio.wait_for(publish_until_heard(), ARRIVES_WITHIN_SECONDS)
            assert heard.status == "succeeded"
