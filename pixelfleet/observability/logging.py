"""Log lines as JSON: timestamp, level, logger, event, the request's or task's `request_id`,
`task_id` and `user_id` (see `log_context`), and any extra fields."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from pixelfleet.observability import log_context

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured duplicate of the message
}
# Loggers that are chatty at INFO about routine work (alembic logs each schema check).
_QUIET = {"alembic.runtime.migration": logging.WARNING, "alembic.runtime.plugins": logging.WARNING}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            "pid": record.process,
        }
        line.update(log_context.current())
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("PIXELFLEET_LOG_LEVEL", "INFO")).upper())
    for name, quiet_level in _QUIET.items():
        logging.getLogger(name).setLevel(quiet_level)
