"""The GCRA policy: bursts up to the count, then one request per interval, and an exact wait."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pixelfleet.rate_limits.policy import Rate, decide, parse_rate
from pixelfleet.settings import Settings


def run(rate: Rate, times_ms: list[int]) -> list[bool]:
    tat: int | None = None
    allowed = []
    for now in times_ms:
        decision = decide(rate, tat, now)
        tat = decision.tat_ms
        allowed.append(decision.allowed)
    return allowed


def test_a_burst_of_the_full_count_is_allowed_and_the_next_is_refused() -> None:
    rate = parse_rate("5/minute")
    assert run(rate, [1000] * 6) == [True] * 5 + [False]


def test_a_refusal_says_exactly_when_the_next_request_is_allowed() -> None:
    rate = parse_rate("5/minute")
    tat = None
    for _ in range(5):
        tat = decide(rate, tat, 0).tat_ms
    refused = decide(rate, tat, 0)
    assert not refused.allowed
    assert refused.retry_after_ms == 12_000  # one interval: 60 s / 5
    assert not decide(rate, refused.tat_ms, 11_999).allowed
    assert decide(rate, refused.tat_ms, 12_000).allowed


def test_a_refused_request_uses_up_nothing() -> None:
    rate = parse_rate("2/second")
    # Hammering while refused does not push the next allowed moment further away.
    assert run(rate, [0, 0, *range(1, 500, 10), 500]) == [True, True, *[False] * 50, True]


def test_an_idle_key_gets_its_whole_burst_back() -> None:
    rate = parse_rate("3/minute")
    assert run(rate, [0, 0, 0, 0, 60_000, 60_000, 60_000, 60_000]) == [
        True, True, True, False, True, True, True, False,
    ]  # fmt: skip


def test_an_interval_rounded_down_lets_no_extra_request_through() -> None:
    rate = Rate(11, 60_000)  # 5454.5 ms per request, kept as 5454
    # After a full burst, the twelfth waits one whole interval, not the 6 ms the rounding leaves.
    assert run(rate, [0] * 11 + [5_448, 5_454]) == [True] * 11 + [False, True]


@given(
    count=st.integers(1, 20),
    period_s=st.sampled_from([1, 60]),
    gaps=st.lists(st.integers(0, 3000), min_size=1, max_size=150),
)
def test_between_any_two_allowed_requests_at_most_a_burst_plus_the_rate_got_through(
    count: int, period_s: int, gaps: list[int]
) -> None:
    rate = Rate(count, period_s * 1000)
    times = []
    now = 0
    for gap in gaps:
        now += gap
        times.append(now)
    allowed = [t for t, ok in zip(times, run(rate, times), strict=True) if ok]
    for i, first in enumerate(allowed):
        for j in range(i, len(allowed)):
            # The token bucket's bound: a full burst, plus one per interval that passed.
            assert j - i + 1 <= count + (allowed[j] - first) // rate.interval_ms


@given(count=st.integers(1, 20), calls=st.integers(1, 100))
def test_a_steady_caller_at_the_rate_is_never_refused(count: int, calls: int) -> None:
    rate = Rate(count, 60_000)
    assert all(run(rate, [i * rate.interval_ms for i in range(calls)]))


@pytest.mark.parametrize("spec", ["10", "0/minute", "5/fortnight", "-1/second", "x/hour"])
def test_a_malformed_rate_setting_is_refused_at_start(spec: str) -> None:
    with pytest.raises(ValueError, match="not a rate"):
        Settings(rate_limit_login_per_account=spec)


def test_rates_are_written_as_they_are_read() -> None:
    assert str(parse_rate("10 / minutes")) == "10/minute"
    assert Settings(rate_limit_tasks_per_user="7/hour").rate_limit_tasks_per_user == Rate(
        7, 3_600_000
    )
