"""The generic cell rate algorithm (GCRA): `count` requests per `period`, in bursts of up to
`count`, with one number of state per key (the theoretical arrival time, TAT). It is the token
bucket without a refill loop, and it tells a refused caller exactly how long to wait."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer
from pydantic_settings import NoDecode

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*$")


@dataclass(frozen=True)
class Rate:
    count: int
    period_ms: int

    @property
    def interval_ms(self) -> int:
        """The time one request uses up."""
        return max(1, self.period_ms // self.count)

    @property
    def burst_ms(self) -> int:
        """How far ahead of now the state may run: a whole burst of intervals. It is the period
        when the count divides it, and a little less when it does not, so that rounding the
        interval down never lets one request more through than the count allows."""
        return self.interval_ms * self.count

    def __str__(self) -> str:
        for name, seconds in PERIODS.items():
            if self.period_ms == seconds * 1000:
                return f"{self.count}/{name}"
        return f"{self.count}/{self.period_ms}ms"


def parse_rate(spec: object) -> Rate:
    """`"10/minute"` (also second, hour, day) as a Rate."""
    if isinstance(spec, Rate):
        return spec
    match = _SPEC.match(str(spec))
    if not match or int(match.group(1)) < 1:
        raise ValueError(f"{spec!r} is not a rate like '10/minute' (second, minute, hour or day)")
    return Rate(int(match.group(1)), PERIODS[match.group(2)] * 1000)


# A settings field: written `"10/minute"` (in the environment too, not as JSON), read as a Rate.
RateSpec = Annotated[
    Rate, NoDecode, BeforeValidator(parse_rate), PlainSerializer(str, return_type=str)
]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # The state to keep (unchanged when refused), and for how long it matters.
    tat_ms: int
    retry_after_ms: int


def decide(rate: Rate, stored_tat_ms: int | None, now_ms: int) -> Decision:
    tat = max(stored_tat_ms or now_ms, now_ms)
    new_tat = tat + rate.interval_ms
    allowed_from = new_tat - rate.burst_ms
    if now_ms < allowed_from:
        return Decision(False, tat, allowed_from - now_ms)
    return Decision(True, new_tat, 0)
