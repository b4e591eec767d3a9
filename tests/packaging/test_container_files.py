"""The container image and the compose file, read as an ops engineer would before running them
(no Docker engine runs here): one slim, non-root image for every role; a compose file whose
services wait for what they need and configure PixelFleet only with settings it reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import make_url

from pixelfleet.settings import Settings

ROOT = Path(__file__).resolve().parent.parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SETTINGS = {f"PIXELFLEET_{name.upper()}" for name in Settings.model_fields}


def _stages() -> list[str]:
    return re.split(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)[1:]


def test_the_image_is_built_in_stages_and_runs_as_a_non_root_user() -> None:
    stages = _stages()
    assert len(stages) >= 2
    runtime = stages[-1]
    assert re.search(r"^USER 10001:10001$", runtime, flags=re.MULTILINE)
    assert "HEALTHCHECK" in runtime
    assert 'ENTRYPOINT ["pixelfleet"]' in runtime
    assert "COPY --from=build" in runtime


def test_the_runtime_stage_carries_no_build_tools() -> None:
    runtime = _stages()[-1]
    for tool in ("uv sync", "pip install", "apt-get install", "gcc", "build-essential"):
        assert tool not in runtime, tool


def test_the_image_installs_from_the_lock_file() -> None:
    build = _stages()[0]
    assert "uv sync --locked" in build
    assert "--no-editable" in build


def test_only_the_sources_go_into_the_build_context() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "*" in ignored  # everything is out unless let in
    allowed = {line.removeprefix("!").rstrip("/") for line in ignored if line.startswith("!")}
    assert allowed == {"pyproject.toml", "uv.lock", "README.md", "pixelfleet", "migrations"}


def test_compose_runs_the_celery_mode_with_postgresql_and_redis() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker", "beat"}
    assert services["api"]["command"][0] == "api"
    assert services["worker"]["command"] == ["worker"]
    assert services["beat"]["command"] == ["beat"]
    assert services["migrate"]["command"] == ["migrate"]


def test_every_service_is_health_checked_or_says_why_not() -> None:
    services = COMPOSE["services"]
    for name in ("postgres", "redis", "worker"):
        assert "test" in services[name]["healthcheck"], name
    assert "healthcheck" not in services["api"]  # the image's own HEALTHCHECK (/healthz)
    for name in ("migrate", "beat"):
        assert services[name]["healthcheck"] == {"disable": True}, name


def test_nothing_starts_before_the_database_is_migrated() -> None:
    services = COMPOSE["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_a_stopping_worker_has_time_to_finish_its_tasks() -> None:
    grace = COMPOSE["services"]["worker"]["stop_grace_period"]
    assert int(grace.removesuffix("s")) > Settings().task_time_limit_seconds


def test_compose_sets_only_settings_pixelfleet_reads() -> None:
    environment = COMPOSE["x-pixelfleet"]["environment"]
    assert set(environment) <= SETTINGS, set(environment) - SETTINGS
    assert environment["PIXELFLEET_LAUNCHER"] == "celery"
    assert environment["PIXELFLEET_ENV"] == "production"


def test_the_database_password_and_the_servers_come_from_one_variable() -> None:
    environment = COMPOSE["x-pixelfleet"]["environment"]
    url = make_url(environment["PIXELFLEET_DATABASE_URL"])
    assert url.password is None  # kept apart, so it may hold any character
    assert (url.host, url.username, url.database) == ("postgres", "pixelfleet", "pixelfleet")
    postgres = COMPOSE["services"]["postgres"]["environment"]
    assert environment["PIXELFLEET_DATABASE_PASSWORD"] == postgres["POSTGRES_PASSWORD"]
    assert postgres["POSTGRES_USER"] == url.username
    assert postgres["POSTGRES_DB"] == url.database
