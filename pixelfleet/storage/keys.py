"""The one rule every adapter applies to storage keys (and to an S3 prefix)."""

from __future__ import annotations

import re

# Slash-separated segments that start with a letter or digit: no absolute paths, no `.` or `..`
# segments, no empty segments, no backslashes or control characters. Safe as a relative path and
# as an S3 key. (`fullmatch`, because `$` would also accept a trailing newline.)
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")


def is_valid_key(key: str) -> bool:
    return _KEY.fullmatch(key) is not None and ".." not in key


def check_key(key: str) -> str:
    """Returns `key` unchanged, or raises ValueError if an adapter must refuse it."""
    if not is_valid_key(key):
        raise ValueError(f"invalid storage key {key!r}")
    return key
