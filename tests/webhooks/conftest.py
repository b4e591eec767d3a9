"""Webhook tests run with a receiver on a loopback port, so private targets are allowed here
(tests of the refusal switch it off), with a backoff short enough to retry within a test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pixelfleet.settings import Settings
from tests.webhooks.receiver import Receiver


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhook_allow_private_targets": True,
            "webhook_backoff_seconds": 0.01,
            "webhook_max_attempts": 3,
            "webhook_timeout_seconds": 2.0,
        }
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    try:
        yield server
    finally:
        server.stop()
