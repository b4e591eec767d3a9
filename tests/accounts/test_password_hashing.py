"""Passwords are hashed with Argon2id at RFC 9106's low-memory profile (argon2-cffi's defaults)
unless PIXELFLEET_PASSWORD_HASHING says otherwise; the suite's cheap hashing is refused in
production."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from argon2 import PasswordHasher, extract_parameters, profiles
from pydantic import ValidationError

from pixelfleet.settings import Settings

HASH_AND_VERIFY = """
import json
from pixelfleet.accounts import passwords
stored = passwords.hash_password("correct horse battery staple")
print(json.dumps({
    "hash": stored,
    "right": passwords.verify_password(stored, "correct horse battery staple"),
    "wrong": passwords.verify_password(stored, "correct horse battery stapler"),
    "unknown": passwords.verify_password(None, "correct horse battery staple"),
}))
"""


def test_a_process_with_the_default_settings_hashes_at_the_recommended_cost() -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PIXELFLEET_")}
    done = subprocess.run(
        [sys.executable, "-c", HASH_AND_VERIFY],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(done.stdout)
    assert answer["hash"].startswith("$argon2id$")
    assert extract_parameters(answer["hash"]) == profiles.RFC_9106_LOW_MEMORY
    assert profiles.get_default_parameters() == profiles.RFC_9106_LOW_MEMORY
    assert (answer["right"], answer["wrong"], answer["unknown"]) == (True, False, False)
    # Any argon2 implementation with the standard parameters verifies it.
    assert PasswordHasher().verify(answer["hash"], "correct horse battery staple")


def test_production_refuses_the_cheapest_hashing() -> None:
    with pytest.raises(ValidationError, match="PIXELFLEET_PASSWORD_HASHING"):
        Settings(env="production", jwt_secret="k" * 48, password_hashing="cheapest")
