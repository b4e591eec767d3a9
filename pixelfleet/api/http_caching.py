"""Conditional and ranged answers for downloads that never change once stored (RFC 9110,
sections 8.8, 13 and 14): the validators a response carries, `If-None-Match` and
`If-Modified-Since` (304), `Range` and `If-Range` (206, or 416 past the end); and the types an
`Accept` header names, for a result stored in several formats.

Written here rather than taken from Starlette's `FileResponse`, which does the same for a file
on this machine: results may be in S3, read through the storage port, and answer alike."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

from pixelfleet.errors import PixelFleetError

_SINGLE_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class RangeNotSatisfiable(PixelFleetError):
    """The `Range` asked for starts past the end of the image."""

    status = 416
    slug = "range-not-satisfiable"
    title = "Range not satisfiable"
    example_detail = "The range starts past the end of the 48213 bytes."

    def __init__(self, size: int) -> None:
        super().__init__(f"The range starts past the end of the {size} bytes.")
        self.size = size

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.size}"}


@dataclass(frozen=True)
class ByteRange:
    start: int
    length: int

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.start + self.length - 1}/{size}"


def http_date(moment: datetime) -> str:
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def requested_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range `header` asks for, or None to send it all: no `Range`, or one this
    does not serve (several ranges, another unit, a malformed one), which RFC 9110 lets a server
    ignore. A range that starts past the end raises RangeNotSatisfiable."""
    match = _SINGLE_RANGE.fullmatch(header.strip()) if header else None
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = min(int(last), size)  # the last N bytes
        if suffix == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(size - suffix, suffix)
    start = int(first)
    if start >= size:
        raise RangeNotSatisfiable(size)
    end = min(int(last), size - 1) if last else size - 1
    if end < start:
        return None
    return ByteRange(start, end - start + 1)


def _tags(header: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in header.split(",")]


def not_modified(
    etag: str,
    last_modified: datetime,
    if_none_match: str | None,
    if_modified_since: str | None,
) -> bool:
    """Whether the client's copy is current: `If-None-Match` names the entity tag (a weak
    comparison, or `*`); without it, `If-Modified-Since` is no earlier than `last_modified`."""
    if if_none_match is not None:
        return if_none_match.strip() == "*" or etag in _tags(if_none_match)
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an invalid date is ignored
    if since.tzinfo is None:
        return False
    return last_modified.replace(microsecond=0) <= since


def range_applies(if_range: str | None, etag: str, last_modified: datetime) -> bool:
    """Whether a `Range` holds for the current representation: no `If-Range`, or one that
    names it exactly (its strong entity tag, or its `Last-Modified` date)."""
    if if_range is None:
        return True
    value = if_range.strip()
    return value == etag or value == http_date(last_modified)


def accepted_types(header: str | None) -> dict[str, float]:
    """The media types an `Accept` header names, each with its weight (RFC 9110 12.5.1; 1 when
    no `q` is given). Wildcards (`image/*`, `*/*`) are left out: they name no type, and a
    negotiated image goes out as AVIF or WebP only to a reader that names it. A malformed
    weight counts as 0, so an entry nobody can read is never chosen."""
    weights: dict[str, float] = {}
    for entry in (header or "").split(","):
        media_type, *parameters = (part.strip() for part in entry.split(";"))
        media_type = media_type.lower()
        if not media_type or "*" in media_type:
            continue
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = min(1.0, max(0.0, float(value.strip())))
                except ValueError:
                    weight = 0.0
        weights[media_type] = max(weight, weights.get(media_type, 0.0))
    return weights
