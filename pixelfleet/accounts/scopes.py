"""What a caller may do. An interactive login holds every scope its role allows; an API key holds
only the scopes it was created with, and never `session`, which guards what a leaked key must not
reach: the keys themselves, the webhook secret, payments and administration."""

from __future__ import annotations

from typing import Final

TASKS_READ: Final = "tasks:read"
TASKS_WRITE: Final = "tasks:write"
CREDITS_READ: Final = "credits:read"
SESSION: Final = "session"
ADMIN: Final = "admin"

# The scopes an API key may be given, and what each allows.
KEY_SCOPES: Final[dict[str, str]] = {
    TASKS_READ: "Read your tasks, their progress, results and deliveries, presets and assets.",
    TASKS_WRITE: "Submit and cancel tasks; save and delete presets and assets.",
    CREDITS_READ: "Read your balance, ledger, usage and payments.",
}

ALL_SCOPES: Final[dict[str, str]] = {
    **KEY_SCOPES,
    SESSION: "An interactive login (never an API key): API keys, webhook secret, payments.",
    ADMIN: "Administration (an interactive login of an admin).",
}


def login_scopes(role: str) -> frozenset[str]:
    """The scopes an interactive login of this role holds."""
    scopes = {*KEY_SCOPES, SESSION}
    if role == "admin":
        scopes.add(ADMIN)
    return frozenset(scopes)
