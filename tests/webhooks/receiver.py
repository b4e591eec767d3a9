"""A real HTTP server on a loopback port that plays a webhook receiver: it records every request
and answers as it is told (a few failures, a redirect, a slow answer), then 200."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self.delay_seconds = 0.0
        self._answers: deque[_Answer] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def answer(self, status: int, *, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answers the next `times` requests with `status` (then 200 again)."""
        with self._lock:
            self._answers.extend(_Answer(status, headers or {}) for _ in range(times))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next_answer(self, request: ReceivedRequest) -> _Answer:
        with self._lock:
            self.requests.append(request)
            return self._answers.popleft() if self._answers else _Answer(200)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _receive(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                answer = receiver._next_answer(
                    ReceivedRequest(self.command, self.path, headers, body)
                )
                if receiver.delay_seconds:
                    time.sleep(receiver.delay_seconds)
                reply = b"ok" if answer.status < 300 else b"no"
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_POST = do_GET = do_PUT = _receive

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
