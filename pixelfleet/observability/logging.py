"""Log lines as JSON: timestamp, level, logger, event, the request's or task's `request_id`,
`task_id` and `user_id` (see `log_context`), and any extra fields.

No secret leaves in a line: bearer tokens, JWTs, the passwords in URLs and `password=...`-like
pairs (uvicorn's access log writes query strings as clients send them) are masked in the
message and the exception, and extra fields named like secrets are masked whole."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any

from pixelfleet.observability import log_context

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured duplicate of the message
}
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
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                line[key] = redact_field(key, value)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


def configure_logging(level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("PIXELFLEET_LOG_LEVEL", "INFO")).upper())
    for name, quiet_level in _QUIET.items():
        logging.getLogger(name).setLevel(quiet_level)
