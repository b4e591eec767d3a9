"""Why an image source could not be used. Nothing is charged for any of them."""

from __future__ import annotations

from pixelfleet.errors import PixelFleetError


class SourceRefused(PixelFleetError):
    """The source URL may not be fetched: not http(s), credentials in it, or a host (or a
    redirect's host) that is private, loopback, link-local or a cloud metadata address."""

    status = 422
    slug = "source-refused"
    title = "Source refused"
    example_detail = (
        "The source url must be a public address (private, loopback and local hosts are "
        "refused)."
    )


class SourceUnreachable(PixelFleetError):
    """The source URL could not be fetched: no such host, no connection, an answer other than
    200, too many redirects, or not all of it within the fetch timeout."""

    status = 422
    slug = "source-unreachable"
    title = "Source unreachable"
    example_detail = "The source answered HTTP 404."


class SourceTooLarge(PixelFleetError):
    """The source has more bytes than an upload may have."""

    status = 422
    slug = "source-too-large"
    title = "Source too large"
    example_detail = "The source is larger than 26214400 bytes (max_upload_bytes)."


class SourceExpired(PixelFleetError):
    """The stored source a task names is gone: its task's files were removed at the end of the
    retention time (`PIXELFLEET_RESULT_TTL_HOURS`)."""

    status = 410
    slug = "source-expired"
    title = "Source expired"
    example_detail = "The source of task 0b5a... was removed with its task's files."
