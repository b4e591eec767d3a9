"""Every setting PixelFleet reads, in one place (environment prefix `PIXELFLEET_`)."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pixelfleet.imaging.limits import ImageLimits

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "dev", "development"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIXELFLEET_", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path(".pixelfleet")
    database_url: str | None = None
    redis_url: str | None = None
    launcher: Literal["embedded", "celery", "kubernetes"] = "embedded"
    storage_url: str | None = None

    jwt_secret: SecretStr | None = None
    jwt_issuer: str = "pixelfleet"
    jwt_audience: str = "pixelfleet-api"
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)

    signup_credits: int = Field(default=100, ge=0)

    max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    max_source_pixels: int = Field(default=50_000_000, ge=1)
    max_output_pixels: int = Field(default=50_000_000, ge=1)
    max_output_side: int = Field(default=12_000, ge=1)
    max_operations: int = Field(default=20, ge=1)
    max_frames: int = Field(default=1000, ge=1)
    max_variants: int = Field(default=8, ge=1)

    embedded_workers: int = Field(default=2, ge=1, le=64)
    # An idle worker's look at the queue is one indexed read that takes no lock: cheap to do often.
    worker_poll_seconds: float = Field(default=0.05, gt=0)
    task_max_attempts: int = Field(default=3, ge=1)
    task_stale_seconds: float = Field(default=300.0, gt=0)
    result_ttl_hours: float = Field(default=24 * 7, gt=0)
    scheduler_interval_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _refuse_placeholder_secrets_in_production(self) -> Settings:
        if self.env == "production":
            secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
            if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 32:
                raise ValueError(
                    "PIXELFLEET_JWT_SECRET must be set to a random value of at least 32 characters "
                    "in production"
                )
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'pixelfleet.db'}"

    @property
    def storage_root(self) -> Path:
        """The directory behind a `file://` storage URL (the data dir's `files/` by default)."""
        if self.storage_url:
            if not self.storage_url.startswith("file://"):
                raise ValueError(f"unsupported storage URL {self.storage_url!r}: use file:///path")
            return Path(self.storage_url.removeprefix("file://"))
        return self.data_dir.resolve() / "files"

    @cached_property
    def jwt_signing_key(self) -> str:
        """The configured secret, else (development only) one generated once per data dir.

        The generated key is written to a private temporary file and linked into place, so a
        reader never sees a half-written key and two processes starting at once agree on one."""
        if self.jwt_secret is not None and self.jwt_secret.get_secret_value():
            return self.jwt_secret.get_secret_value()
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.data_dir / "jwt-secret"
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=self.data_dir, prefix=".jwt-secret-")  # mode 0600
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(secrets.token_urlsafe(48))
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
            finally:
                os.unlink(tmp)
        key = path.read_text(encoding="utf-8").strip()
        if len(key) < 32:
            raise ValueError(f"{path} holds no usable key: delete it to generate a new one")
        return key

    @property
    def image_limits(self) -> ImageLimits:
        return ImageLimits(
            max_upload_bytes=self.max_upload_bytes,
            max_source_pixels=self.max_source_pixels,
            max_output_pixels=self.max_output_pixels,
            max_output_side=self.max_output_side,
            max_operations=self.max_operations,
            max_frames=self.max_frames,
            max_variants=self.max_variants,
        )
