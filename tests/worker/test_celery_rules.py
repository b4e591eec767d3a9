"""The small rules Celery workers live by: who may take a task over, what is worth a retry."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import IntegrityError, OperationalError

from pixelfleet.imaging.errors import ImageTooLarge
from pixelfleet.settings import Settings
from pixelfleet.worker.names import celery_worker_name, holder_stopped
from pixelfleet.worker.transient import RETRY_MAX_SECONDS, is_transient, retry_delay


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_worker_may_take_over_its_own_claim_and_that_of_a_dead_process_on_its_host() -> None:
    host = socket.gethostname()
    assert holder_stopped(celery_worker_name())
    assert holder_stopped(f"celery@{host}:{_dead_pid()}")


def test_a_live_process_or_another_host_keeps_its_claim() -> None:
    host = socket.gethostname()
    assert not holder_stopped(f"celery@{host}:{os.getppid()}")
    assert not holder_stopped(f"celery@another-host.example:{_dead_pid()}")
    assert not holder_stopped(f"embedded@{host}:{_dead_pid()}:0")
    assert not holder_stopped("celery@garbage")


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("SELECT 1", {}, ConnectionRefusedError("refused")),
        ConnectionRefusedError("refused"),
        TimeoutError("slow"),
        RedisConnectionError("gone"),
    ],
)
def test_lost_connections_are_worth_a_retry(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError("INSERT", {}, ValueError("duplicate")),
        ImageTooLarge("too big"),
        ValueError("a bug"),
        KeyError("a bug"),
    ],
)
def test_bad_input_and_bugs_are_not_retried(error: BaseException) -> None:
    assert not is_transient(error)


def test_retry_delays_grow_and_stop_growing_at_a_minute() -> None:
    assert 0.5 <= retry_delay(0) <= 1.0
    assert 4.0 <= retry_delay(3) <= 8.0
    assert all(retry_delay(n) <= RETRY_MAX_SECONDS for n in range(30))


def test_the_broker_keeps_unacknowledged_messages_longer_than_the_longest_task() -> None:
    settings = Settings(task_soft_time_limit_seconds=3000, task_time_limit_seconds=3600)
    assert settings.broker_visibility_timeout > settings.task_time_limit_seconds


def test_a_hard_limit_below_the_soft_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="TIME_LIMIT"):
        Settings(task_soft_time_limit_seconds=100, task_time_limit_seconds=50)


def test_the_celery_launcher_needs_redis() -> None:
    with pytest.raises(ValueError, match="PIXELFLEET_REDIS_URL"):
        Settings(launcher="celery")
