"""In production PixelFleet refuses to start on placeholder or short secrets, naming the setting;
in development it runs on a key of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from pixelfleet.settings import Settings

STRONG = "s" * 48


@pytest.fixture(autouse=True)
def _standard_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production settings as a deployment has them, without the suite's cheap hashing."""
    monkeypatch.delenv("PIXELFLEET_PASSWORD_HASHING", raising=False)


def test_production_needs_a_real_jwt_secret() -> None:
    for weak in (None, "changeme", "secret", "short-but-random"):
        with pytest.raises(ValidationError, match="PIXELFLEET_JWT_SECRET"):
            Settings(env="production", jwt_secret=weak)
    assert Settings(env="production", jwt_secret=STRONG).jwt_signing_key == STRONG


@pytest.mark.parametrize(
    ("field", "name"),
    [
        ("webhook_secret", "PIXELFLEET_WEBHOOK_SECRET"),
        ("razorpay_key_secret", "PIXELFLEET_RAZORPAY_KEY_SECRET"),
        ("razorpay_webhook_secret", "PIXELFLEET_RAZORPAY_WEBHOOK_SECRET"),
        ("database_password", "PIXELFLEET_DATABASE_PASSWORD"),
        ("redis_password", "PIXELFLEET_REDIS_PASSWORD"),
    ],
)
def test_production_refuses_any_other_secret_left_as_a_placeholder(field: str, name: str) -> None:
    for placeholder in ("changeme", "password", "dev"):
        with pytest.raises(ValidationError, match=name):
            Settings(env="production", jwt_secret=STRONG, **{field: placeholder})
    Settings(env="production", jwt_secret=STRONG, **{field: "k" * 40})  # a real one starts


def test_development_runs_on_placeholders_and_makes_its_own_key(tmp_path: Path) -> None:
    settings = Settings(env="development", data_dir=tmp_path, webhook_secret="dev")
    assert len(settings.jwt_signing_key) >= 32


def test_the_api_will_not_start_in_production_on_a_placeholder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXELFLEET_")}
    env |= {
        "PIXELFLEET_ENV": "production",
        "PIXELFLEET_JWT_SECRET": "changeme",
        "PIXELFLEET_DATA_DIR": str(tmp_path),
    }
    started = subprocess.run(
        [sys.executable, "-m", "pixelfleet", "api", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode != 0
    assert "PIXELFLEET_JWT_SECRET" in started.stderr


def test_production_refuses_to_fetch_image_sources_from_private_addresses() -> None:
    with pytest.raises(ValidationError, match="PIXELFLEET_SOURCE_ALLOW_PRIVATE_URLS"):
        Settings(env="production", jwt_secret=STRONG, source_allow_private_urls=True)
    assert not Settings(env="production", jwt_secret=STRONG).source_allow_private_urls


def test_production_mails_links_only_under_the_public_address() -> None:
    smtp = "smtp://mailer:secret@smtp.example.com:587"
    with pytest.raises(ValidationError, match="PIXELFLEET_PUBLIC_URL"):
        Settings(env="production", jwt_secret=STRONG, smtp_url=smtp)
    configured = Settings(
        env="production", jwt_secret=STRONG, smtp_url=smtp, public_url="https://img.example"
    )
    assert configured.smtp_url is not None


def test_an_empty_smtp_url_is_none_and_another_scheme_is_refused() -> None:
    # A compose file passes an unset variable as empty: mail then goes to files.
    assert Settings(smtp_url="").smtp_url is None
    with pytest.raises(ValidationError, match="smtp://"):
        Settings(smtp_url="https://smtp.example.com")
