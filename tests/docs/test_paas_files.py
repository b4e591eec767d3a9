"""The PaaS files at the repository root, read as the platforms would: `render.yaml` (a Render
Blueprint) and `railway.json` (Railway's config as code, with its siblings for the worker and
beat) build the root Dockerfile, start real `pixelfleet` commands, check a real health route,
and configure PixelFleet only with settings it reads, its secrets never written in the file."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from pixelfleet.api.app import create_app
from pixelfleet.settings import Settings
from tests.docs.guides import ROOT, Invocation, environment_names, option_names, resolve

RENDER: dict[str, Any] = yaml.safe_load((ROOT / "render.yaml").read_text(encoding="utf-8"))
RAILWAY_FILES = ("railway.json", "deploy/railway/worker.json", "deploy/railway/beat.json")
SECRETS = {
    f"PIXELFLEET_{name.upper()}"
    for name, field in Settings.model_fields.items()
    if SecretStr in getattr(field.annotation, "__args__", (field.annotation,))
}
# What a platform sets for the process beside PixelFleet's settings.
PLATFORM_VARIABLES = {"PORT"}


def _railway(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / path).read_text(encoding="utf-8"))
    return loaded


def _routes(tmp_path: Path) -> set[str]:
    """The paths the API serves, from its own OpenAPI document."""
    paths: dict[str, Any] = create_app(Settings(data_dir=tmp_path)).openapi()["paths"]
    return set(paths)


def _pixelfleet_command(words: list[str]) -> tuple[str, ...]:
    """The command path `pixelfleet <words>` runs; fails on a command or option that is not."""
    path, command, options = resolve(Invocation(tuple(words)))
    assert path, words
    assert set(options) <= option_names(command), (words, set(options) - option_names(command))
    return path


def _argv(command: str | list[str]) -> list[str]:
    """A start command as the container runs it: a shell's `-c` script unwrapped."""
    text = command if isinstance(command, str) else " ".join(command)
    argv = shlex.split(text)
    if argv[:2] in (["/bin/sh", "-c"], ["sh", "-c"]):
        argv = shlex.split(argv[2])
    if argv and argv[0] == "exec":
        argv = argv[1:]
    return argv


# ---- render.yaml -------------------------------------------------------------------------------


def _render_services(kind: str | None = None) -> list[dict[str, Any]]:
    services: list[dict[str, Any]] = RENDER["services"]
    return [s for s in services if kind is None or s["type"] == kind]


def _render_apps() -> list[dict[str, Any]]:
    return [s for s in _render_services() if s.get("runtime") == "docker"]


def test_render_runs_the_api_a_worker_and_beat_from_the_root_dockerfile() -> None:
    apps = _render_apps()
    for service in apps:
        assert service["dockerfilePath"] == "./Dockerfile"
        assert (ROOT / service["dockerfilePath"]).is_file()
        assert service.get("dockerContext", ".") == "."
    # The Dockerfile's entry point is `pixelfleet`: each dockerCommand is its arguments.
    assert 'ENTRYPOINT ["pixelfleet"]' in (ROOT / "Dockerfile").read_text(encoding="utf-8")
    started = {
        service["type"]: _pixelfleet_command(shlex.split(service["dockerCommand"]))
        for service in apps
        if service["type"] == "web"
    }
    assert started == {"web": ("api",)}
    workers = sorted(
        _pixelfleet_command(shlex.split(s["dockerCommand"])) for s in _render_services("worker")
    )
    assert workers == [("beat",), ("worker",)]
    [beat] = [s for s in _render_services("worker") if s["dockerCommand"] == "beat"]
    assert beat["numInstances"] == 1


def test_render_migrates_before_the_api_starts_and_checks_readiness(tmp_path: Path) -> None:
    [api] = _render_services("web")
    assert _pixelfleet_command(shlex.split(api["preDeployCommand"])) == ("migrate",)
    assert api["healthCheckPath"] == "/readyz"
    assert api["healthCheckPath"] in _routes(tmp_path)
    port = shlex.split(api["dockerCommand"])[shlex.split(api["dockerCommand"]).index("--port") + 1]
    assert {"key": "PORT", "value": port} in api["envVars"]


def test_render_provides_postgresql_and_a_key_value_store_that_never_evicts() -> None:
    [database] = RENDER["databases"]
    assert database["name"] == "pixelfleet-db"
    [redis] = _render_services("keyvalue")
    assert redis["maxmemoryPolicy"] == "noeviction"
    assert redis["ipAllowList"] == []


def _render_env(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A service's variables by name, its env groups' included."""
    groups = {group["name"]: group["envVars"] for group in RENDER["envVarGroups"]}
    env: dict[str, dict[str, Any]] = {}
    for entry in service.get("envVars", []):
        if "fromGroup" in entry:
            env |= {var["key"]: var for var in groups[entry["fromGroup"]]}
        else:
            env[entry["key"]] = entry
    return env


def test_render_sets_only_settings_pixelfleet_reads() -> None:
    for service in _render_apps():
        names = set(_render_env(service))
        assert names - PLATFORM_VARIABLES <= environment_names(), service["name"]
    for group in RENDER["envVarGroups"]:
        assert {var["key"] for var in group["envVars"]} <= environment_names()


def test_render_writes_no_secret_into_the_file() -> None:
    for service in _render_apps():
        for name, var in _render_env(service).items():
            if name in SECRETS:
                assert "value" not in var, (service["name"], name)
                assert (
                    var.get("generateValue")
                    or var.get("sync") is False
                    or ("fromDatabase" in var or "fromService" in var)
                ), (service["name"], name)


def test_every_render_service_shares_one_generated_jwt_key_and_runs_in_production() -> None:
    groups_used = [
        {entry["fromGroup"] for entry in service["envVars"] if "fromGroup" in entry}
        for service in _render_apps()
    ]
    assert all(used == groups_used[0] for used in groups_used)
    for service in _render_apps():
        env = _render_env(service)
        assert env["PIXELFLEET_JWT_SECRET"] == {
            "key": "PIXELFLEET_JWT_SECRET",
            "generateValue": True,
        }
        assert env["PIXELFLEET_ENV"]["value"] == "production"
        assert env["PIXELFLEET_LAUNCHER"]["value"] == "celery"


def test_render_wires_the_database_and_redis_to_resources_of_the_blueprint() -> None:
    databases = {database["name"] for database in RENDER["databases"]}
    services = {(s["type"], s["name"]) for s in _render_services()}
    for service in _render_apps():
        env = _render_env(service)
        assert env["PIXELFLEET_DATABASE_URL"]["fromDatabase"] == {
            "name": "pixelfleet-db",
            "property": "connectionString",
        }
        redis = env["PIXELFLEET_REDIS_URL"]["fromService"]
        assert (redis["type"], redis["name"]) in services
        assert redis["property"] == "connectionString"
        for var in env.values():
            if "fromDatabase" in var:
                assert var["fromDatabase"]["name"] in databases
            if "fromService" in var:
                ref = var["fromService"]
                assert (ref["type"], ref["name"]) in services


def test_render_stores_images_in_a_bucket_because_services_share_no_disk() -> None:
    for service in _render_apps():
        env = _render_env(service)
        assert "disk" not in service
        assert env["PIXELFLEET_STORAGE_URL"] == {"key": "PIXELFLEET_STORAGE_URL", "sync": False}


# ---- railway.json ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", RAILWAY_FILES)
def test_railway_builds_the_root_dockerfile(path: str) -> None:
    config = _railway(path)
    assert config["$schema"] == "https://railway.com/railway.schema.json"
    assert config["build"] == {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"}
    assert (ROOT / config["build"]["dockerfilePath"]).is_file()
    assert config["deploy"]["restartPolicyType"] == "ON_FAILURE"
    assert config["deploy"]["restartPolicyMaxRetries"] >= 1


@pytest.mark.parametrize(
    ("path", "command"),
    [
        ("railway.json", ("api",)),
        ("deploy/railway/worker.json", ("worker",)),
        ("deploy/railway/beat.json", ("beat",)),
    ],
)
def test_railway_starts_a_real_pixelfleet_command(path: str, command: tuple[str, ...]) -> None:
    # Railway's start command replaces the image's entry point: it names `pixelfleet` itself.
    argv = _argv(_railway(path)["deploy"]["startCommand"])
    assert argv[0] == "pixelfleet"
    assert _pixelfleet_command(argv[1:]) == command


def test_railway_serves_the_api_on_its_port_after_migrating_and_checks_readiness(
    tmp_path: Path,
) -> None:
    deploy = _railway("railway.json")["deploy"]
    argv = _argv(deploy["startCommand"])
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert argv[argv.index("--port") + 1].startswith("${PORT")
    [migrate] = deploy["preDeployCommand"]
    assert _argv(migrate)[0] == "pixelfleet"
    assert _pixelfleet_command(_argv(migrate)[1:]) == ("migrate",)
    assert deploy["healthcheckPath"] == "/readyz"
    assert deploy["healthcheckPath"] in _routes(tmp_path)


def test_a_stopping_railway_worker_has_time_to_finish_its_tasks() -> None:
    draining = _railway("deploy/railway/worker.json")["deploy"]["drainingSeconds"]
    assert draining > Settings().task_time_limit_seconds
    assert _railway("deploy/railway/beat.json")["deploy"]["numReplicas"] == 1
