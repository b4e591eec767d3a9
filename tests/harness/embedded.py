"""Runs `pixelfleet up` as a real process tree (API, worker and scheduler processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.harness.cpu import wait_until_idle
from tests.harness.ports import free_port


@dataclass
class RunningPlatform:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def crash(self) -> None:
        """Kills the API, its workers and its scheduler at once, as a power cut would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@contextmanager
def pixelfleet_up(
    data_dir: Path, *, env: dict[str, str] | None = None, workers: int = 2, settled: bool = False
) -> Iterator[RunningPlatform]:
    """A served `pixelfleet up`, once its API is ready; with `settled`, once its whole tree is
    idle too (its worker and scheduler processes take seconds of CPU to start, after the API
    answers: a benchmark that began meanwhile would time their start-up with its work)."""
    port = free_port()
    log_path = data_dir.parent / f"up-{port}.log"
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("PIXELFLEET_")
    }
    # Suites sign up many users from one address; tests/hardening/test_rate_limits.py turns
    # the limits on.
    environment["PIXELFLEET_RATE_LIMITS_ENABLED"] = "false"
    # Sign-ups at argon2's cheapest cost (tests/accounts/test_password_hashing.py checks the
    # standard one).
    environment["PIXELFLEET_PASSWORD_HASHING"] = "cheapest"
    environment.update(env or {})
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pixelfleet",
                "up",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                "--workers",
                str(workers),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,  # its own process group, so `crash` reaches every part
        )
    platform = RunningPlatform(f"http://127.0.0.1:{port}", process, log_path, data_dir)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"pixelfleet up exited early:\n{platform.log()}")
            try:
                if httpx.get(f"{platform.base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"pixelfleet up did not get ready:\n{platform.log()}")
            time.sleep(0.1)
        if settled:
            wait_until_idle(process.pid, within=120)
        yield platform
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(45)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
