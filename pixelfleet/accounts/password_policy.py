"""What a new password must be: not one from the lists of breached passwords, and not easy to
guess from the account's own email or the service's name (zxcvbn's estimate, which knows the
breached-password lists, keyboard walks, dates, repeats and l33t spellings)."""

from __future__ import annotations

from functools import cache

from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

# zxcvbn scores 0-4; 2 means "needs more than about 10^6 guesses": behind the login rate limit,
# out of reach of an online attack.
MIN_SCORE = 2
# zxcvbn's matching grows fast with length; a longer password is judged by its start, which
# only ever makes the judgement stricter.
JUDGED_LENGTH = 64


@cache
def _breached() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def weakness(password: str, email: str) -> str | None:
    """Why the password must not be used, or None if it may."""
    if password.lower() in _breached():
        return "This password appears in lists of passwords leaked in data breaches."
    local_part = email.partition("@")[0]
    estimate = zxcvbn(password[:JUDGED_LENGTH], user_inputs=[email, local_part, "pixelfleet"])
    if estimate["score"] >= MIN_SCORE:
        return None
    feedback = estimate["feedback"]
    advice = " ".join([feedback["warning"], *feedback["suggestions"]]).strip()
    return f"This password is too easy to guess. {advice}".strip()
