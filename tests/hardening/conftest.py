from __future__ import annotations

import pytest

from tests.celery_mode.conftest import redis_server  # noqa: F401  (a Redis for a module)
from tests.hardening.tally import TALLY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY.tried:
        return
    by_kind = ", ".join(f"{kind} {count}" for kind, count in sorted(TALLY.tried.items()))
    terminalreporter.write_line(f"{TALLY.line()} ({by_kind})")
    for error in TALLY.server_errors:
        terminalreporter.write_line(f"  server error: {error}")
