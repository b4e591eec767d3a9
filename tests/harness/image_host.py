"""A real HTTP server on a loopback address that plays a remote image host: it serves the
answers it is given by path (an image, a redirect, an error, a body trickled slowly or longer
than it declares) and records every path it was asked for."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    trickle_seconds: float = 0.0
    """Pause between 1 KiB pieces of the body."""
    declared_length: int | None = None
    """The Content-Length sent, when not the body's (None: the body's)."""


class ImageHost:
    def __init__(self, address: str = "127.0.0.1") -> None:
        self.requests: list[str] = []
        self.answers: dict[str, Answer] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((address, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return self.origin + path

    def serve(self, path: str, answer: Answer) -> str:
        self.answers[path] = answer
        return self.url(path)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with host._lock:
                    host.requests.append(self.path)
                answer = host.answers.get(self.path, Answer(404, b"not found"))
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                length = answer.declared_length
                length = len(answer.body) if length is None else length
                self.send_header("Content-Length", str(length))
                self.end_headers()
                try:
                    for start in range(0, len(answer.body), 1024):
                        self.wfile.write(answer.body[start : start + 1024])
                        if answer.trickle_seconds:
                            self.wfile.flush()
                            time.sleep(answer.trickle_seconds)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should on a refused source

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler


@contextmanager
def image_host(address: str = "127.0.0.1") -> Iterator[ImageHost]:
    host = ImageHost(address)
    host._thread.start()
    try:
        yield host
    finally:
        host._server.shutdown()
        host._server.server_close()
        host._thread.join(timeout=5)
