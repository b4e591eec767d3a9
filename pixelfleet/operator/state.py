"""What the operator's handlers share, built once at startup (in Kopf's `memo`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from pixelfleet.context import ProcessContext
from pixelfleet.launchers.celery import CeleryLauncher
from pixelfleet.operator.cluster import CreditBindings, ImageJobs


@dataclass
class OperatorState:
    ctx: ProcessContext
    jobs: ImageJobs
    celery: CeleryLauncher
    bindings: CreditBindings
    background: list[asyncio.Task[None]] = field(default_factory=list)
    metrics_server: WSGIServer | None = None
