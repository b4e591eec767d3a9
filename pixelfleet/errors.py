"""The domain's error base: each error knows its HTTP status and its problem type.

Services raise these; one handler in the API renders them as RFC 9457 problem documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

PROBLEM_BASE = "https://pixelfleet.dev/problems/"


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field (`field` is a dotted path: `pipeline.operations.0`)."""

    field: str
    message: str

    @classmethod
    def from_pydantic(cls, field: str, message: str) -> FieldError:
        """Pydantic's message without the prefix it adds to a validator's own words
        ("Value error, unknown colour" reads "unknown colour")."""
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        return cls(field, message)


class PixelFleetError(Exception):
    """Base of every expected error. Subclasses set `status`, `slug` and `title`."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"
    # What `detail` says in a typical case, for the OpenAPI document's examples.
    example_detail: ClassVar[str | None] = None

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    @property
    def headers(self) -> dict[str, str]:
        """Response headers the problem carries (`Retry-After`, ...)."""
        return {}

    @property
    def members(self) -> dict[str, object]:
        """Extension members of the problem document (RFC 9457, section 3.2)."""
        return {}


class NotFound(PixelFleetError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(PixelFleetError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class Unauthorized(PixelFleetError):
    status = 401
    slug = "unauthorized"
    title = "Authentication required"


class Forbidden(PixelFleetError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class InvalidInput(PixelFleetError):
    status = 422
    slug = "validation-error"
    title = "Invalid input"


class RetryLater(PixelFleetError):
    """A problem that passes: its answer says when to ask again (`Retry-After`)."""

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class TooManyRequests(RetryLater):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"


class QuotaExceeded(PixelFleetError):
    """An account has used up one of its quotas (`quota` names the setting, in lower case and
    without its prefix). A 403: what the account stores stays until it deletes something."""

    status = 403
    slug = "quota-exceeded"
    title = "Quota exceeded"

    def __init__(self, detail: str, *, quota: str, limit: int, usage: int, requested: int) -> None:
        super().__init__(detail)
        self.quota = quota
        self.limit = limit
        self.usage = usage
        self.requested = requested

    @property
    def members(self) -> dict[str, object]:
        return {
            "quota": self.quota,
            "limit": self.limit,
            "usage": self.usage,
            "requested": self.requested,
        }


class QuotaExceededForNow(QuotaExceeded):
    """A quota that frees itself as work finishes: a 429 with `Retry-After`."""

    status = 429

    def __init__(
        self,
        detail: str,
        *,
        quota: str,
        limit: int,
        usage: int,
        requested: int,
        retry_after_seconds: int,
    ) -> None:
        super().__init__(detail, quota=quota, limit=limit, usage=usage, requested=requested)
        self.retry_after_seconds = retry_after_seconds

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}
