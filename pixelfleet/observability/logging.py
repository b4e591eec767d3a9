"""Log lines as JSON: timestamp, level, logger, event, the request's or task's `request_id`,
`task_id` and `user_id` (see `log_context`), and any extra fields.

Every line a process writes is JSON, libraries' too: Python warnings (Pillow's "Truncated File
Read" on a corrupt EXIF block, say) become records of the `py.warnings` logger, and what C
libraries write straight to file descriptor 2 (libtiff's complaints about a corrupt TIFF) is
read back from a pipe and written as records of the `stderr` logger at WARNING; what is
printed to file descriptor 1 (Celery's banner) likewise, as records of the `stdout` logger at
INFO. Pillow offers no hook for libtiff's messages, hence the pipes. Library noise never pages
anyone: Pillow's own ERROR records (a hostile TIFF's sample count) are written at WARNING.

No secret leaves in a line: bearer tokens, JWTs, the passwords in URLs and `password=...`-like
pairs (uvicorn's access log writes query strings as clients send them) are masked in the
message and the exception, and extra fields named like secrets are masked whole."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import re
import select
import sys
import termios
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from pixelfleet.observability import log_context

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured duplicate of the message
    # Kopf puts its whole OperatorSettings (some 3 KB) and its event-posting flag in every
    # record of a resource's logger, for its own handlers; its own JSON formatter leaves them
    # out too. The resource itself (`k8s_ref`) is written as `object`, as Kopf writes it.
    "settings",
    "k8s_skip",
    "k8s_ref",
}
_KOPF_REFERENCE = "k8s_ref"
# Loggers that are chatty at INFO about routine work (alembic logs each schema check).
_QUIET = {"alembic.runtime.migration": logging.WARNING, "alembic.runtime.plugins": logging.WARNING}

REDACTED = "[REDACTED]"
_SENSITIVE_NAME = r"[A-Za-z_-]*(?:token|password|passwd|secret|api_?key)"
_SENSITIVE_FIELD = re.compile(r"(?i)token|password|passwd|secret|authorization|api_?key|cookie")
# Each pattern keeps its first group and masks what follows it.
_SECRETS_IN_TEXT = [
    # `Authorization: Bearer <token>`, wherever it is quoted.
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    # A JWT (its header is base64 JSON, so it starts `eyJ`), signed or not.
    re.compile(r"()\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
    # `scheme://user:PASSWORD@host`; the password ends at the last `@` before a space or
    # quote, so an unescaped `@` in it does not leave its end behind.
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s:/?#@'\"]*:)[^\s'\"]+(?=@)"),
    # `password=...`, `access_token=...` in query strings and reprs.
    re.compile(rf"(?i)(\b{_SENSITIVE_NAME}=['\"]?)[^\s&'\",;)]+"),
    # `"password": "..."` in JSON and dict reprs.
    re.compile(rf"(?i)(['\"]{_SENSITIVE_NAME}['\"]\s*:\s*['\"])[^'\"]*"),
]


def redact(text: str) -> str:
    """`text` with every secret it seems to hold masked."""
    for pattern in _SECRETS_IN_TEXT:
        text = pattern.sub(rf"\g<1>{REDACTED}", text)
    return text


def redact_field(name: str, value: Any) -> Any:
    """An extra field's value as it is written: masked whole if its name says it is a secret,
    else with the secrets in its text (and in its items) masked. Other objects are written as
    their `str`, so that is what gets masked (a settings object shows its URLs)."""
    if value is None:
        return None
    if _SENSITIVE_FIELD.search(name):
        return REDACTED
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {str(key): redact_field(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_field("", item) for item in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact(record.getMessage()),
            "pid": record.process,
        }
        line.update(log_context.current())
        reference = getattr(record, _KOPF_REFERENCE, None)
        if isinstance(reference, dict):
            line["object"] = redact_field("object", reference)
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                line[key] = redact_field(key, value)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


class _LibraryNoise(logging.Filter):
    """Pillow logs a hostile file's oddities at ERROR; they are the upload's fault, not ours,
    and ERROR pages operators. Written at WARNING."""

    _LIBRARIES = ("PIL",)

    def filter(self, record: logging.LogRecord) -> bool:
        library = record.name.split(".", 1)[0] in self._LIBRARIES
        if library and record.levelno > logging.WARNING:
            record.levelno, record.levelname = (
                logging.WARNING,
                logging.getLevelName(logging.WARNING),
            )
        return True


class _UnaskedTraceback(logging.Filter):
    """Celery hands its log line of a finished task's failure the traceback in `data`, even
    when its policy writes none: for an expected failure (a PixelFleet failure, the image's
    fault, logged at INFO with the task's error as its reason). Kept only on a record that
    asks for a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        if isinstance(data, dict) and "traceback" in data and not record.exc_info:
            record.data = {key: value for key, value in data.items() if key != "traceback"}
        return True


class _LineWriter:
    """Whole lines written to a file descriptor, one writer at a time, waiting (without
    holding the GIL) while a pipe is full instead of failing."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        data = memoryview(text.encode("utf-8", "replace"))
        with self._lock:
            while data:
                try:
                    written = os.write(self.fd, data)
                except BlockingIOError:
                    select.select([], [self.fd], [], 1.0)
                    continue
                data = data[written:]
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered."""


@dataclass(frozen=True)
class _Stream:
    fd: int
    logger: str
    level: int


STDOUT = _Stream(1, "stdout", logging.INFO)
"""What is printed (Celery's banner, say) is a record of the `stdout` logger at INFO."""
STDERR = _Stream(2, "stderr", logging.WARNING)
"""What is written to stderr by other means than logging (a C library's complaint, a last
traceback) is a record of the `stderr` logger at WARNING."""

_PIPE_MARKER = "_PIXELFLEET_FD{fd}_PIPE"
"""Names the pipe a process made a standard stream (device:inode); the processes it starts
inherit both, and write their JSON lines into that pipe, which passes them through."""

_PIPE_BYTES = 1 << 20
_DRAIN_SECONDS = 2.0


def _identity(fd: int) -> str:
    stat = os.fstat(fd)
    return f"{stat.st_dev}:{stat.st_ino}"


def _is_json_object(line: str) -> bool:
    if not line.startswith("{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


class _CapturedStream:
    """A standard stream's file descriptor made a pipe, read by a thread that writes each line
    to the original stream: JSON lines (the processes this one started log into the pipe they
    inherit) as they are, any other line as a JSON record of the stream's logger.

    The pipe's writing end does not block: a C library that writes a flood while holding the
    GIL (so the reading thread cannot run) loses what does not fit in the pipe's megabyte
    instead of hanging the process."""

    def __init__(self, stream: _Stream) -> None:
        self.pid = os.getpid()
        self.stream = stream
        read_fd, write_fd = os.pipe()
        with contextlib.suppress(OSError, AttributeError):  # Linux only; the default is 64 KiB
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        os.set_blocking(write_fd, False)
        for python_stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                python_stream.flush()
        self.output = _LineWriter(os.dup(stream.fd))
        os.dup2(write_fd, stream.fd)
        os.close(write_fd)
        self._read_fd = read_fd
        self._partial = b""
        self._lock = threading.Lock()
        self._log = logging.getLogger(stream.logger)
        self._formatter = JsonFormatter()
        threading.Thread(target=self._read, name=f"{stream.logger}-as-json", daemon=True).start()
        atexit.register(self.drain)

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._read_fd, 65536)
            except OSError:
                return
            with self._lock:
                if not chunk:
                    self._forward_partial()
                    return
                *lines, self._partial = (self._partial + chunk).split(b"\n")
                for line in lines:
                    self._forward(line)

    def _forward(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if not line.strip():
            return
        if _is_json_object(line):
            self.output.write(line + "\n")
        elif self._log.isEnabledFor(self.stream.level):
            # Formatted here rather than logged: a handler that wrote to this stream would
            # feed the pipe this thread reads.
            record = self._log.makeRecord(
                self.stream.logger,
                self.stream.level,
                f"(fd {self.stream.fd})",
                0,
                "%s",
                (line,),
                None,
            )
            self.output.write(self._formatter.format(record) + "\n")

    def _forward_partial(self) -> None:
        partial, self._partial = self._partial, b""
        self._forward(partial)

    def _unread_bytes(self) -> int:
        pending = bytearray(4)
        fcntl.ioctl(self._read_fd, termios.FIONREAD, pending)
        return int.from_bytes(pending, sys.byteorder)

    def drain(self) -> None:
        """At exit: let the thread write what is still in the pipe (a last traceback)."""
        for python_stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                python_stream.flush()
        deadline = time.monotonic() + _DRAIN_SECONDS
        empty_checks = 0
        while time.monotonic() < deadline and empty_checks < 2:
            # Twice empty, a moment apart: the thread has also written what it last read.
            with self._lock:
                empty_checks = empty_checks + 1 if self._unread_bytes() == 0 else 0
            time.sleep(0.01)
        with self._lock:
            self._forward_partial()


_captured: dict[int, _CapturedStream] = {}


def _json_only(stream: _Stream) -> _LineWriter | TextIO | None:
    """Where this process writes JSON lines meant for `stream`, with the stream captured
    once per process tree (see _CapturedStream); None if the process has no such stream."""
    captured = _captured.get(stream.fd)
    if captured is not None and captured.pid == os.getpid():
        return captured.output
    marker = _PIPE_MARKER.format(fd=stream.fd)
    try:
        inherited = os.environ.get(marker) == _identity(stream.fd)
    except OSError:
        return None  # no such file descriptor (a daemon): nothing to capture
    if inherited:
        # Started by a process that captures this stream: write into its pipe.
        return _LineWriter(stream.fd)
    captured = _CapturedStream(stream)
    _captured[stream.fd] = captured
    os.environ[marker] = _identity(stream.fd)
    return captured.output


def configure_logging(level: str | None = None) -> None:
    """JSON lines for everything this process writes (see the module's description); safe to
    call more than once."""
    _json_only(STDOUT)
    handler = logging.StreamHandler(_json_only(STDERR) or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_LibraryNoise())
    handler.addFilter(_UnaskedTraceback())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("PIXELFLEET_LOG_LEVEL", "INFO")).upper())
    for name, quiet_level in _QUIET.items():
        logging.getLogger(name).setLevel(quiet_level)
    logging.captureWarnings(True)
