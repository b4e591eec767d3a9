from __future__ import annotations

from tests.celery_mode.conftest import redis_server  # noqa: F401  (a Redis for a module)
