"""Signed, expiring URLs of results (`/v1/results/{token}`): they need no credential, so a page
can put one in `<img src>`. The token names one output of one task and when it stops working;
it is signed with a key derived from the JWT key (never the key itself, which signs logins)."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from pixelfleet.errors import Forbidden
from pixelfleet.jobs.schemas import ResultOut, TaskOut, TaskPage
from pixelfleet.settings import Settings

_KEY_LABEL = b"pixelfleet/results/url-key/v1"
_ALGORITHM = "HS256"
_AUDIENCE = "pixelfleet:result"
PATH_PREFIX = "/v1/results/"


class ResultUrlInvalid(Forbidden):
    """A result URL whose token PixelFleet did not sign as it stands (changed, cut, made up)."""

    slug = "result-url-invalid"
    title = "Result URL invalid"
    example_detail = "This result URL is not one PixelFleet signed."


class ResultUrlExpired(Forbidden):
    """A result URL past its time (`PIXELFLEET_RESULT_URL_TTL_SECONDS`): read the task again for
    a fresh one."""

    slug = "result-url-expired"
    title = "Result URL expired"
    example_detail = "This result URL expired; read the task again for a fresh one."


@dataclass(frozen=True)
class SignedResult:
    task_id: uuid.UUID
    output: str
    expires_at: datetime


class ResultUrls:
    def __init__(self, settings: Settings) -> None:
        self._key = hmac.new(
            settings.jwt_signing_key.encode("utf-8"), _KEY_LABEL, hashlib.sha256
        ).digest()
        self._lifetime = timedelta(seconds=settings.result_url_ttl_seconds)
        self._base = (settings.public_url or "").rstrip("/")

    def url(self, task_id: uuid.UUID, output: str, now: datetime) -> str:
        # The expiry is rounded up to the minute: a task read many times within a minute gets
        # the same URL each time, which a browser's cache then recognises.
        expires = -(-int((now + self._lifetime).timestamp()) // 60) * 60
        claims = {"aud": _AUDIENCE, "t": str(task_id), "o": output, "exp": expires}
        token = jwt.encode(claims, self._key, algorithm=_ALGORITHM)
        return f"{self._base}{PATH_PREFIX}{token}"

    def verify(self, token: str) -> SignedResult:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                options={"require": ["exp", "aud"]},
            )
            task_id = uuid.UUID(str(claims["t"]))
            output = str(claims["o"])
        except jwt.ExpiredSignatureError:
            raise ResultUrlExpired(
                "This result URL expired; read the task again for a fresh one."
            ) from None
        except (jwt.InvalidTokenError, KeyError, ValueError):
            raise ResultUrlInvalid("This result URL is not one PixelFleet signed.") from None
        return SignedResult(task_id, output, datetime.fromtimestamp(claims["exp"], tz=UTC))

    def past_half_life(self, url: str, now: datetime) -> bool:
        """Whether a URL this signed has less than half its lifetime left (or none, or was not
        signed here): one to sign again where it is kept (an ImageJob's status)."""
        try:
            signed = self.verify(url.rsplit("/", 1)[-1])
        except (ResultUrlInvalid, ResultUrlExpired):
            return True
        return signed.expires_at - now < self._lifetime / 2

    def _linked(self, output: ResultOut, task_id: uuid.UUID, now: datetime) -> ResultOut:
        return output.model_copy(update={"url": self.url(task_id, output.name, now)})

    def task(self, task: TaskOut, now: datetime) -> TaskOut:
        """`task` with each output's `url` a signed URL (what the API answers its owner)."""
        outputs = [self._linked(output, task.id, now) for output in task.outputs]
        return task.model_copy(
            update={"outputs": outputs, "result": outputs[0] if outputs else None}
        )

    def page(self, page: TaskPage, now: datetime) -> TaskPage:
        return page.model_copy(update={"items": [self.task(task, now) for task in page.items]})
