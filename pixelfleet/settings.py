"""Every setting PixelFleet reads, in one place (environment prefix `PIXELFLEET_`)."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.quotas import AccountQuotas
from pixelfleet.rate_limits.policy import RateSpec, parse_rate

MAX_EMBEDDED_WORKERS = 64  # `pixelfleet up --workers` and PIXELFLEET_EMBEDDED_WORKERS at most

PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "secret", "dev", "development", "password", "postgres", "redis"}
)


class CreditPack(BaseModel):
    """A pack of credits users can buy: its price is in the currency's smallest unit (paise)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    credits: int = Field(gt=0, le=10_000_000)
    amount: int = Field(ge=100, description="The price in the smallest unit (100 paise = 1 INR).")
    currency: str = Field(default="INR", pattern=r"^[A-Z]{3}$")


DEFAULT_CREDIT_PACKS = (
    CreditPack(id="starter", credits=500, amount=49_900),
    CreditPack(id="studio", credits=3_000, amount=249_900),
    CreditPack(id="fleet", credits=15_000, amount=999_900),
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PIXELFLEET_", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path(".pixelfleet")
    database_url: str | None = None
    # Put into the URLs above in place of their password, escaped, so a password kept in a
    # secret of its own may hold any character.
    database_password: SecretStr | None = None
    redis_url: str | None = None
    redis_password: SecretStr | None = None
    launcher: Literal["embedded", "celery", "kubernetes"] = "embedded"
    storage_url: str | None = None
    # S3 (or an S3-compatible server) for `s3://bucket/prefix` storage URLs. Credentials fall back
    # to boto3's usual sources (AWS_* variables, instance roles) when these are unset.
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None

    jwt_secret: SecretStr | None = None
    jwt_issuer: str = "pixelfleet"
    jwt_audience: str = "pixelfleet-api"
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    # Argon2id's parameters for new password hashes: `standard` is RFC 9106's low-memory profile
    # (argon2-cffi's defaults); `cheapest` makes hashing nearly free, for test suites only
    # (production refuses it). Read once per process.
    password_hashing: Literal["standard", "cheapest"] = "standard"  # noqa: S105 (not a secret)

    signup_credits: int = Field(default=100, ge=0, le=1_000_000)
    # JSON: [{"id": "starter", "credits": 500, "amount": 49900, "currency": "INR"}, ...]
    credit_packs: tuple[CreditPack, ...] = DEFAULT_CREDIT_PACKS

    # Razorpay: payments answer 503 until the key id and secret are set.
    razorpay_key_id: str | None = None
    razorpay_key_secret: SecretStr | None = None
    razorpay_webhook_secret: SecretStr | None = None
    razorpay_base_url: str = "https://api.razorpay.com"
    razorpay_timeout_seconds: float = Field(default=10.0, gt=0)

    max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    max_source_pixels: int = Field(default=50_000_000, ge=1)
    max_output_pixels: int = Field(default=50_000_000, ge=1)
    max_output_side: int = Field(default=12_000, ge=1)
    max_operations: int = Field(default=20, ge=1)
    max_frames: int = Field(default=1000, ge=1)
    max_animation_pixels: int = Field(default=50_000_000, ge=1)
    max_variants: int = Field(default=8, ge=1)

    # Per-account quotas (refused with a `quota-exceeded` problem naming the setting).
    max_assets_per_user: int = Field(default=AccountQuotas.max_assets_per_user, ge=0)
    max_asset_bytes_per_user: int = Field(default=AccountQuotas.max_asset_bytes_per_user, ge=0)
    max_presets_per_user: int = Field(default=AccountQuotas.max_presets_per_user, ge=0)
    max_active_tasks_per_user: int = Field(default=AccountQuotas.max_active_tasks_per_user, ge=0)

    # 0: `pixelfleet up` runs the API and the scheduler only, and tasks wait in the queue.
    embedded_workers: int = Field(default=2, ge=0, le=MAX_EMBEDDED_WORKERS)
    # A queued task (or a cancel) rings the workers' doorbell; this look is the fallback for a
    # lost ring, at the queue and at the task a worker runs.
    worker_poll_seconds: float = Field(default=5.0, gt=0)
    task_max_attempts: int = Field(default=3, ge=1)
    # Fair sharing: at most this many tasks of a queue are handed to its workers ahead of their
    # start; the others wait in the database and are handed out as workers start tasks, the
    # account with the fewest tasks handed out or running first. A task of an account with
    # nothing in flight so waits behind at most this many others, whatever another account
    # has queued.
    dispatch_ahead: int = Field(default=16, ge=1, le=100_000)
    task_stale_seconds: float = Field(default=300.0, gt=0)
    result_ttl_hours: float = Field(default=24 * 7, gt=0)
    scheduler_interval_seconds: float = Field(default=30.0, gt=0)

    # Celery mode.
    celery_queue: str = Field(default="pixelfleet", min_length=1, max_length=64)
    # A task past its soft limit is stopped (its pipeline process ended), fails and is refunded,
    # in every mode; Celery's hard limit ends a pool process stuck outside its pipeline.
    task_soft_time_limit_seconds: float = Field(default=120.0, gt=0)
    task_time_limit_seconds: float = Field(default=150.0, gt=0)
    # A queued task whose dispatch nobody picked up within this time is sent again.
    redispatch_after_seconds: float = Field(default=60.0, gt=0)
    events_stream_max_length: int = Field(default=100_000, ge=100)

    # Kubernetes mode: where the API creates ImageJobs (default: the pod's own namespace).
    kubernetes_namespace: str | None = None
    imagejob_ttl_seconds: int | None = Field(default=3600, ge=0)
    operator_resync_seconds: float = Field(default=300.0, gt=0)
    operator_liveness_port: int = Field(default=8081, ge=0, le=65535)

    # Browser origins allowed to call the API from another site (CORS), e.g.
    # ["https://app.example.com"]; empty: same-origin only.
    cors_allow_origins: list[str] = Field(default_factory=list)

    # Rate limits ("N/second|minute|hour|day"), kept in Redis when it is configured (shared by
    # every API replica), else in the API process. Refusals are 429 with Retry-After.
    rate_limits_enabled: bool = True
    rate_limit_login_per_account: RateSpec = parse_rate("10/minute")
    rate_limit_login_per_address: RateSpec = parse_rate("30/minute")
    rate_limit_register_per_address: RateSpec = parse_rate("20/hour")
    rate_limit_tasks_per_user: RateSpec = parse_rate("120/minute")
    rate_limit_tasks_per_address: RateSpec = parse_rate("600/minute")
    rate_limit_assets_per_user: RateSpec = parse_rate("30/minute")
    rate_limit_assets_per_address: RateSpec = parse_rate("120/minute")
    rate_limit_presets_per_user: RateSpec = parse_rate("60/minute")
    rate_limit_presets_per_address: RateSpec = parse_rate("300/minute")
    rate_limit_payments_per_user: RateSpec = parse_rate("20/minute")
    rate_limit_payments_per_address: RateSpec = parse_rate("60/minute")
    # Password reset and verification mails asked for: nobody's mailbox is flooded through us.
    rate_limit_mail_per_account: RateSpec = parse_rate("5/hour")
    rate_limit_mail_per_address: RateSpec = parse_rate("30/hour")
    # Proxies whose X-Forwarded-For names the client (addresses or CIDRs, comma-separated; `*`
    # trusts any): the per-address limits and the logs see the client, not the proxy.
    trusted_proxies: str = "127.0.0.1"

    # Prometheus metrics of the processes that serve no HTTP API (0: not served).
    worker_metrics_port: int = Field(default=9808, ge=0, le=65535)
    # A Celery worker's /healthz (on its metrics port) fails once its consumer loop has not
    # turned for this long.
    worker_liveness_seconds: float = Field(default=120.0, gt=0, le=3600)
    operator_metrics_port: int = Field(default=9809, ge=0, le=65535)

    # Webhooks (a task's `callback_url`).
    webhook_secret: SecretStr | None = None
    webhook_allow_private_targets: bool = False
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_max_attempts: int = Field(default=6, ge=1, le=20)
    webhook_backoff_seconds: float = Field(default=10.0, gt=0)
    # After an account rotates its webhook secret, the previous one still signs (in a second
    # `v1` of the signature header) for this long, so that receivers can switch without a gap.
    webhook_secret_grace_hours: float = Field(default=24.0, ge=0, le=720)
    # How often the upkeep sends the deliveries that came due (the retries).
    webhook_sweep_seconds: float = Field(default=5.0, gt=0)

    # Mail to account holders (password resets, email verification). With an SMTP server
    # (`smtp://user:pass@host:587`, STARTTLS when offered; `smtps://...:465`, TLS from the start),
    # sent through it; without one, each message is written as an .eml file under
    # `<data dir>/mail/`. Either way through an outbox: an outage of the mail server loses none.
    smtp_url: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    # CA certificates (PEM) that an SMTP server's certificate may chain to, beyond the system's.
    smtp_ca_file: Path | None = None
    mail_from: str = Field(default="PixelFleet <no-reply@pixelfleet.invalid>", max_length=320)
    mail_max_attempts: int = Field(default=8, ge=1, le=20)
    # The product's name, as mail and pages call it.
    product_name: str = Field(default="PixelFleet", min_length=1, max_length=64)
    # A mailed password reset link works once, for this long.
    password_reset_minutes: int = Field(default=30, ge=5, le=24 * 60)
    # When true, a new account cannot submit tasks or pay until it proves its email.
    require_email_verification: bool = False

    # Image sources a task names by URL (`{"source": {"url": ...}}`): the whole fetch, however
    # slowly its bytes come, must end within this; private and loopback hosts only in tests.
    source_fetch_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    source_allow_private_urls: bool = False
    # Results are linked by signed URLs that need no credential (`<img src>`): absolute under
    # `public_url` when set (the address clients reach the API at), else paths on the API.
    public_url: str | None = Field(default=None, max_length=512)
    result_url_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    # With S3 storage a signed result URL answers a 302 to a presigned S3 GET, so the bytes go
    # from the bucket, not through the API (off: the API streams them). Local storage streams.
    result_redirect: bool = True
    # How long the first read of a derivative URL waits for the image to be made; past it, a
    # 503 with Retry-After while it is finished in the background.
    derive_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    # A direct upload (`POST /v1/uploads`) can be sent, and used as a source, for this long; then
    # its bytes are deleted. At most 7 days: the longest an S3 presigned URL may live.
    upload_ttl_hours: float = Field(default=24.0, gt=0, le=168)

    @field_validator("smtp_url")
    @classmethod
    def _an_smtp_address(cls, url: SecretStr | None) -> SecretStr | None:
        """Empty is none (an unset variable of a compose file); else smtp:// or smtps://."""
        text = url.get_secret_value() if url is not None else ""
        if not text:
            return None
        if not text.startswith(("smtp://", "smtps://")):
            raise ValueError("must be smtp://user:password@host:587 or smtps://…:465")
        return url

    @field_validator("public_url")
    @classmethod
    def _an_http_address(cls, url: str | None) -> str | None:
        if url and not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// address, such as https://img.example")
        return url or None

    @field_validator("database_url")
    @classmethod
    def _with_the_async_driver(cls, url: str | None) -> str | None:
        """`postgres://` and `postgresql://` (what Render, Railway, Heroku and Supabase hand
        out) mean PostgreSQL through asyncpg, the driver PixelFleet uses."""
        if url is None:
            return None
        for scheme in ("postgres://", "postgresql://"):
            if url.startswith(scheme):
                return "postgresql+asyncpg://" + url.removeprefix(scheme)
        return url

    @model_validator(mode="after")
    def _refuse_placeholder_secrets_in_production(self) -> Settings:
        if self.env == "production":
            if self.source_allow_private_urls:
                raise ValueError(
                    "PIXELFLEET_SOURCE_ALLOW_PRIVATE_URLS must be false in production: it lets "
                    "any user make the API fetch from the internal network"
                )
            self._refuse_weak_secrets()
            if self.password_hashing != "standard":  # noqa: S105 (a cost, not a secret)
                raise ValueError("PIXELFLEET_PASSWORD_HASHING must be standard in production")
        if self.env == "production" and self.smtp_url is not None and not self.public_url:
            raise ValueError(
                "PIXELFLEET_SMTP_URL needs PIXELFLEET_PUBLIC_URL in production: mailed links "
                "must name the address users reach"
            )
        if self.launcher != "embedded" and not self.redis_url:
            raise ValueError(f"PIXELFLEET_LAUNCHER={self.launcher} needs PIXELFLEET_REDIS_URL")
        if len({pack.id for pack in self.credit_packs}) != len(self.credit_packs):
            raise ValueError("PIXELFLEET_CREDIT_PACKS has two packs with the same id")
        if self.task_time_limit_seconds <= self.task_soft_time_limit_seconds:
            raise ValueError(
                "PIXELFLEET_TASK_TIME_LIMIT_SECONDS must be greater than "
                "PIXELFLEET_TASK_SOFT_TIME_LIMIT_SECONDS"
            )
        return self

    def _refuse_weak_secrets(self) -> None:
        """Production runs only on real secrets: the JWT key always, the others when set."""
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
        if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 32:
            raise ValueError(
                "PIXELFLEET_JWT_SECRET must be set to a random value of at least 32 characters "
                "in production"
            )
        optional = {
            "PIXELFLEET_WEBHOOK_SECRET": (self.webhook_secret, 32),
            "PIXELFLEET_RAZORPAY_KEY_SECRET": (self.razorpay_key_secret, 8),
            "PIXELFLEET_RAZORPAY_WEBHOOK_SECRET": (self.razorpay_webhook_secret, 8),
            "PIXELFLEET_DATABASE_PASSWORD": (self.database_password, 8),
            "PIXELFLEET_REDIS_PASSWORD": (self.redis_password, 8),
        }
        for name, (value, shortest) in optional.items():
            if value is None:
                continue
            text = value.get_secret_value()
            if text.lower() in PLACEHOLDER_SECRETS or len(text) < shortest:
                raise ValueError(
                    f"{name} is a placeholder or shorter than {shortest} characters: set a real "
                    "secret in production"
                )

    @property
    def resolved_database_url(self) -> str:
        if not self.database_url:
            return f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'pixelfleet.db'}"
        if self.database_password is None:
            return self.database_url
        url = make_url(self.database_url).set(password=self.database_password.get_secret_value())
        return url.render_as_string(hide_password=False)

    @property
    def resolved_redis_url(self) -> str | None:
        if not self.redis_url or self.redis_password is None:
            return self.redis_url
        parts = urlsplit(self.redis_url)
        user = quote(unquote(parts.username or ""), safe="")
        password = quote(self.redis_password.get_secret_value(), safe="")
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))

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
    def resolved_kubernetes_namespace(self) -> str:
        if self.kubernetes_namespace:
            return self.kubernetes_namespace
        in_cluster = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        if in_cluster.is_file():
            return in_cluster.read_text(encoding="utf-8").strip()
        return "default"

    @property
    def broker_visibility_timeout(self) -> float:
        """How long Redis waits before handing an unacknowledged message to another worker:
        longer than the longest task (its hard limit) plus the longest retry countdown."""
        return max(3600.0, 2 * self.task_time_limit_seconds + 120.0)

    def stored_queue(self, queue: str | None) -> str | None:
        """How a task names `queue`: not at all for the default one (as the API's tasks do)."""
        return None if queue == self.celery_queue else queue

    @property
    def image_limits(self) -> ImageLimits:
        return ImageLimits(
            max_upload_bytes=self.max_upload_bytes,
            max_source_pixels=self.max_source_pixels,
            max_output_pixels=self.max_output_pixels,
            max_output_side=self.max_output_side,
            max_operations=self.max_operations,
            max_frames=self.max_frames,
            max_animation_pixels=self.max_animation_pixels,
            max_variants=self.max_variants,
        )

    @property
    def account_quotas(self) -> AccountQuotas:
        return AccountQuotas(
            max_assets_per_user=self.max_assets_per_user,
            max_asset_bytes_per_user=self.max_asset_bytes_per_user,
            max_presets_per_user=self.max_presets_per_user,
            max_active_tasks_per_user=self.max_active_tasks_per_user,
        )
