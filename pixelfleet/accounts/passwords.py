"""Argon2id password hashing, with the parameters PIXELFLEET_PASSWORD_HASHING names."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from pixelfleet.settings import Settings

PARAMETERS = {
    "standard": profiles.RFC_9106_LOW_MEMORY,
    "cheapest": profiles.CHEAPEST,
}


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher.from_parameters(PARAMETERS[Settings().password_hashing])


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so that a login takes as long either way."""
    return _hasher().hash("pixelfleet-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return (
            _hasher().verify(password_hash or _dummy_hash(), password)
            and password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)
