"""The autoscaler against kmock's emulated API server, with a real Redis, PostgreSQL and real
Celery workers: the fixtures of the operator suite (steps.py makes the worker Deployment, its
pods and the WorkerPool)."""

from __future__ import annotations

from tests.operator.conftest import (  # noqa: F401  (fixtures shared with the operator suite)
    backend,
    cluster,
    cluster_namespaces,
    operator_overrides,
    processes,
    redis_server,
    settings,
)
