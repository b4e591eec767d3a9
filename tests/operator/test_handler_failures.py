"""Which failures the operator retries: only those that can get better by themselves (the
database, the Kubernetes API or the broker away); the rest fail the handler for good."""

from __future__ import annotations

import pytest
from kubernetes.client.exceptions import ApiException
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import IntegrityError, OperationalError
from urllib3.exceptions import MaxRetryError

from pixelfleet.launchers import DispatchFailed
from pixelfleet.operator.failures import recoverable


@pytest.mark.parametrize(
    "failure",
    [
        OperationalError("SELECT 1", {}, ConnectionRefusedError("refused")),
        ConnectionRefusedError("refused"),
        TimeoutError(),
        MaxRetryError(None, "/apis", "refused"),  # type: ignore[arg-type]
        ApiException(status=503),
        ApiException(status=429),
        ApiException(status=0),
        RedisConnectionError("away"),
        DispatchFailed("the broker did not take it"),
    ],
    ids=type,
)
def test_an_outage_is_tried_again(failure: BaseException) -> None:
    assert recoverable(failure)


@pytest.mark.parametrize(
    "failure",
    [
        ApiException(status=403),  # a grant is missing: someone has to add it
        ApiException(status=422),
        PermissionError("the storage refused a write"),  # an OSError, but not an outage
        IntegrityError("INSERT", {}, ValueError("duplicate")),
        KeyError("status"),
        ValueError("a bug"),
    ],
    ids=type,
)
def test_anything_else_fails_for_good(failure: BaseException) -> None:
    assert not recoverable(failure)
