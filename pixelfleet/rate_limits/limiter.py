"""The rules (each named once, its rate read from settings) and the limiter that applies them."""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from typing import Literal, Protocol

from redis.exceptions import RedisError

from pixelfleet.errors import TooManyRequests
from pixelfleet.rate_limits.policy import Rate
from pixelfleet.settings import Settings

log = logging.getLogger(__name__)

RuleName = Literal[
    "login_per_account",
    "login_per_address",
    "register_per_address",
    "tasks_per_user",
    "tasks_per_address",
    "assets_per_user",
    "assets_per_address",
    "presets_per_user",
    "presets_per_address",
    "payments_per_user",
    "payments_per_address",
    "mail_per_account",
    "mail_per_address",
]


class RateStore(Protocol):
    """Where the limiter keeps its state (the adapters are in `stores.py`)."""

    async def take(self, key: str, rate: Rate) -> int:
        """Takes one request from the key's allowance: 0 if allowed, else the ms to wait."""
        ...


@dataclass(frozen=True)
class Rule:
    name: RuleName
    rate: Rate
    # How a refusal reads: "Too many {what} {whose}; ..."
    what: str
    whose: str


def rules_from(settings: Settings) -> dict[RuleName, Rule]:
    listed = [
        Rule("login_per_account", settings.rate_limit_login_per_account, "login attempts",
             "for this account"),
        Rule("login_per_address", settings.rate_limit_login_per_address, "login attempts",
             "from your address"),
        Rule("register_per_address", settings.rate_limit_register_per_address, "registrations",
             "from your address"),
        Rule("tasks_per_user", settings.rate_limit_tasks_per_user, "task submissions",
             "for this account"),
        Rule("tasks_per_address", settings.rate_limit_tasks_per_address, "task submissions",
             "from your address"),
        Rule("assets_per_user", settings.rate_limit_assets_per_user, "asset uploads",
             "for this account"),
        Rule("assets_per_address", settings.rate_limit_assets_per_address, "asset uploads",
             "from your address"),
        Rule("presets_per_user", settings.rate_limit_presets_per_user, "preset writes",
             "for this account"),
        Rule("presets_per_address", settings.rate_limit_presets_per_address, "preset writes",
             "from your address"),
        Rule("payments_per_user", settings.rate_limit_payments_per_user, "payment requests",
             "for this account"),
        Rule("payments_per_address", settings.rate_limit_payments_per_address,
             "payment requests", "from your address"),
        Rule("mail_per_account", settings.rate_limit_mail_per_account, "mailed links",
             "for this account"),
        Rule("mail_per_address", settings.rate_limit_mail_per_address, "mailed links",
             "from your address"),
    ]  # fmt: skip
    return {rule.name: rule for rule in listed}


class Limiter:
    """Applies the rules; with no store (limits switched off) it allows everything.

    When Redis cannot be reached the request is allowed and a warning logged: the limits guard
    against floods, and an outage of Redis should not also lock every user out."""

    def __init__(self, rules: dict[RuleName, Rule], store: RateStore | None) -> None:
        self.rules = rules
        self._store = store

    async def check(self, name: RuleName, subject: str) -> None:
        if self._store is None:
            return
        rule = self.rules[name]
        # Subjects (emails, addresses) are hashed: the store never holds them in the clear.
        digest = hashlib.sha256(subject.encode("utf-8")).hexdigest()[:32]
        try:
            wait_ms = await self._store.take(f"{name}:{digest}", rule.rate)
        except (RedisError, OSError):
            log.warning("rate limit %s not applied: its store is unreachable", name, exc_info=True)
            return
        if wait_ms > 0:
            seconds = max(1, math.ceil(wait_ms / 1000))
            raise TooManyRequests(
                f"Too many {rule.what} {rule.whose} (at most {rule.rate}); "
                f"try again in {seconds} s.",
                retry_after_seconds=seconds,
            )
