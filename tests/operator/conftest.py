"""The operator against kmock's emulated Kubernetes API, with a real Redis, a fresh PostgreSQL
database, real `pixelfleet worker` and `pixelfleet operator` processes, and the API in-process
with the `kubernetes` launcher (it creates ImageJobs in the emulated cluster)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pixelfleet.settings import Settings
from tests.celery_mode.conftest import (  # noqa: F401  (fixtures shared with celery mode)
    backend,
    processes,
    redis_server,
)
from tests.conftest import TEST_JWT_SECRET
from tests.harness.image_host import ImageHost, image_host
from tests.harness.kubernetes import EmulatedCluster
from tests.harness.ports import free_port
from tests.harness.redis import RedisServer

NAMESPACE = "default"


@pytest.fixture
def cluster_namespaces() -> tuple[str, ...]:
    """The namespaces the emulated cluster has (a module adds the ones its jobs live in)."""
    return (NAMESPACE,)


@pytest.fixture
def cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster_namespaces: tuple[str, ...]
) -> Iterator[EmulatedCluster]:
    with EmulatedCluster(namespaces=cluster_namespaces) as emulated:
        # Every process here (the API in-process, the worker, the operator) finds it this way.
        monkeypatch.setenv("KUBECONFIG", str(emulated.kubeconfig(tmp_path)))
        yield emulated


@pytest.fixture
def operator_overrides() -> dict[str, Any]:
    return {}


def operator_settings(
    database_url: str,
    directory: Path,
    redis_server: RedisServer,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """The settings of the API, the workers and the operator of one test (or one module)."""
    values: dict[str, Any] = {
        "data_dir": directory / "data",
        "database_url": database_url,
        "jwt_secret": TEST_JWT_SECRET,
        "launcher": "kubernetes",
        "kubernetes_namespace": NAMESPACE,
        "redis_url": redis_server.url,
        "celery_queue": f"test-{uuid.uuid4().hex[:12]}",
        "storage_url": f"file://{directory / 'files'}",
        "operator_resync_seconds": 1.0,
        "operator_liveness_port": free_port(),
        "operator_metrics_port": free_port(),  # not the default: suites may run side by side
        "worker_metrics_port": free_port(),  # not the default: test processes run side by side
        "task_stale_seconds": 4.0,
        "redispatch_after_seconds": 30.0,
        "rate_limits_enabled": False,  # tests/hardening/test_rate_limits.py turns them on
    }
    values.update(overrides or {})
    return Settings(**values)


@pytest.fixture
def settings(
    database_url: str,
    tmp_path: Path,
    redis_server: RedisServer,
    cluster: EmulatedCluster,
    operator_overrides: dict[str, Any],
) -> Settings:
    return operator_settings(database_url, tmp_path, redis_server, operator_overrides)


@pytest.fixture
def host() -> Iterator[ImageHost]:
    """A web server of images, for ImageJobs that name a source by URL."""
    with image_host() as serving:
        yield serving
