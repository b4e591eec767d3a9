"""Which failures are worth a retry: lost connections to the database, the broker or storage.
Anything else (a bad image, a bug) is not made better by trying again soon."""

from __future__ import annotations

import random

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0
MAX_TRANSIENT_RETRIES = 8


def is_transient(exc: BaseException) -> bool:
    if isinstance(
        exc, OperationalError | InterfaceError | RedisConnectionError | RedisTimeoutError
    ):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    # Storage clients name their connection failures themselves.
    return type(exc).__name__ in {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
    }


def retry_delay(retries: int) -> float:
    """Exponential backoff with full jitter: 1, 2, 4 ... seconds, at most a minute."""
    ceiling = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2**retries)
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (not for security)
