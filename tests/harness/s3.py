"""A throwaway S3-compatible server (moto in server mode) on a free loopback port."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from pixelfleet.settings import Settings
from tests.harness.ports import free_port


@dataclass
class MotoServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    # moto accepts any credentials; these only have to be present and consistent.
    access_key_id: str = "pixelfleet-test"
    secret_access_key: str = "pixelfleet-test-secret"
    region: str = "us-east-1"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, **overrides: Any) -> Settings:
        """Settings whose S3 client talks to this server (plus any other settings given)."""
        return Settings(
            s3_endpoint_url=self.endpoint_url,
            s3_region=self.region,
            s3_access_key_id=self.access_key_id,
            s3_secret_access_key=SecretStr(self.secret_access_key),
            **overrides,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @classmethod
    def start(cls, timeout: float = 30.0) -> MotoServer:
        port = free_port()
        log_path = Path(tempfile.mkdtemp(prefix="pixelfleet-moto-")) / "moto.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        server = cls(process=process, port=port, log_path=log_path)
        try:
            server._wait_until_it_answers(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_until_it_answers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited early:\n{self.log()}")
            try:
                # Any HTTP answer will do: the server is listening and routing requests.
                httpx.get(f"{self.endpoint_url}/moto-api/", timeout=1)
                return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not answer within {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.log_path.parent, ignore_errors=True)
