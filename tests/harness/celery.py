"""Real Celery worker and beat processes (`pixelfleet worker`, `pixelfleet beat`), configured
through the environment from a `Settings` object, as a deployment would configure them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from pixelfleet.settings import Settings

READY_MARK = "ready."


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a process read the same settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELFLEET_")}
    for name in settings.model_fields_set:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"PIXELFLEET_{name.upper()}"] = str(value)
    env["PIXELFLEET_LOG_LEVEL"] = "INFO"
    return env


@dataclass
class CeleryProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(
        cls,
        settings: Settings,
        log_path: Path,
        *args: str,
        ready_mark: str | None = READY_MARK,
        program: list[str] | None = None,
    ) -> CeleryProcess:
        """Starts `python -m pixelfleet ARGS` (or `PROGRAM ARGS`) and waits for `ready_mark`."""
        log = log_path.open("ab")
        process = subprocess.Popen(
            [*(program or [sys.executable, "-m", "pixelfleet"]), *args],
            env=settings_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() reaches the pool's children
        )
        log.close()
        started = cls(process, log_path)
        if ready_mark is not None:
            started.wait_for_log(ready_mark, timeout=60)
        return started

    @classmethod
    def worker(
        cls, settings: Settings, log_path: Path, *, concurrency: int = 1, pool: str = "prefork"
    ) -> CeleryProcess:
        return cls.start(
            settings, log_path, "worker", f"--concurrency={concurrency}", f"--pool={pool}"
        )

    @classmethod
    def beat(cls, settings: Settings, log_path: Path) -> CeleryProcess:
        return cls.start(settings, log_path, "beat", ready_mark="beat: Starting")

    @property
    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"process exited with {self.process.returncode}:\n{self.output}")
            time.sleep(0.05)
        raise TimeoutError(f"no {text!r} in the log within {timeout}s:\n{self.output[-4000:]}")

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM: a warm shutdown (running tasks finish first)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL to the worker and every child in its process group: nothing finishes."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        stop_together([self])


def stop_together(processes: Iterable[CeleryProcess], timeout: float = 20) -> None:
    """A warm shutdown of each (SIGTERM), or SIGKILL for one that takes longer than `timeout`.
    Every process gets its SIGTERM before any is waited for, so they shut down side by side."""
    processes = list(processes)
    for each in processes:
        if each.process.poll() is None:
            each.process.send_signal(signal.SIGTERM)
    for each in processes:
        try:
            each.process.wait(timeout)
        except subprocess.TimeoutExpired:
            each.kill()
        else:
            # A warm shutdown ends the main process; make sure no child outlives it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(each.process.pid, signal.SIGKILL)
