"""Which failures of an operator handler can get better by themselves, and so are retried: the
database, the Kubernetes API or the broker being away (a refused or dropped connection, a
timeout, a 5xx or 429 answer). Anything else (a 4xx such as a missing grant, a bug, a row
that breaks a rule) fails the handler for good, visibly: a Warning Event on the ImageJob and a
count in `pixelfleet_operator_errors_total`."""

from __future__ import annotations

import asyncio
import socket

from kubernetes.client.exceptions import ApiException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from urllib3.exceptions import HTTPError

from pixelfleet.launchers import DispatchFailed

RETRY_SECONDS = 10

_AWAY = (
    OperationalError,  # the database refused, dropped or timed out the connection
    InterfaceError,
    DisconnectionError,
    PoolTimeout,
    ConnectionError,  # refused or reset before a driver wraps it
    socket.gaierror,  # a name that does not resolve (yet)
    TimeoutError,
    asyncio.TimeoutError,
    HTTPError,  # the Kubernetes API's connection
    RedisConnectionError,
    RedisTimeoutError,
    DispatchFailed,  # the broker did not take the message
)


def recoverable(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status in (None, 0, 429) or int(exc.status) >= 500
    return isinstance(exc, _AWAY)
