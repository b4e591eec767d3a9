"""Debian's Prometheus and promtool, for the tests of the alerting rules and the dashboard: found
on PATH, or installed with apt-get (package `prometheus`) when the tests run as root on a
machine without them.

The package's own service is not what the tests use: if installing it started one, it is
stopped again. A test's server listens on a free loopback port, keeps its TSDB in a folder of
its own, and is stopped when the test is done."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.harness.ports import free_port

PACKAGE = "prometheus"


def _found() -> bool:
    return bool(shutil.which("promtool") and shutil.which("prometheus"))


def _run_quietly(*command: str) -> None:
    if shutil.which(command[0]):
        subprocess.run(command, capture_output=True, check=False)


def _apt_install() -> None:
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", PACKAGE]
    if subprocess.run(install, env=environment, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update"], env=environment, capture_output=True, check=True)
        subprocess.run(install, env=environment, capture_output=True, check=True)
    # The package's service (on :9090) may have been started by the install: the tests start
    # their own servers and want no other one running.
    if Path("/run/systemd/system").is_dir():
        _run_quietly("systemctl", "disable", "--now", PACKAGE)
    else:
        _run_quietly("service", PACKAGE, "stop")


def _ensure_installed() -> None:
    if not _found() and os.geteuid() == 0 and shutil.which("apt-get"):
        _apt_install()
    if not _found():
        raise RuntimeError(
            "promtool and prometheus were not found and could not be installed: "
            f"install them (Debian: apt-get install {PACKAGE})"
        )


def promtool_executable() -> str:
    """The path of `promtool`, installing Debian's package if there is none."""
    _ensure_installed()
    return str(shutil.which("promtool"))


def prometheus_executable() -> str:
    """The path of the `prometheus` server, installing Debian's package if there is none."""
    _ensure_installed()
    return str(shutil.which("prometheus"))


def promtool(
    *args: str | os.PathLike[str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`promtool ARGS...` (reading `stdin` if given), its output captured; never raises on a
    non-zero exit."""
    return subprocess.run(
        [promtool_executable(), *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


class QueryError(Exception):
    """Prometheus refused a query (its `error`, with the query)."""


@dataclass
class PrometheusServer:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def api(self, path: str, **params: str) -> Any:
        """The `data` of a GET on the HTTP API (`/api/v1/...`); raises `QueryError` when
        Prometheus answers with an error."""
        response = httpx.get(f"{self.base_url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise QueryError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[tuple[dict[str, str], float]]:
        """An instant query's vector, now or `at` (a Unix time): each series' labels and value
        (NaN stays NaN)."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        data = self.api("query", **params)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        if data["resultType"] != "vector":
            raise QueryError(f"{expr}: a {data['resultType']}, not an instant vector")
        return [(sample["metric"], float(sample["value"][1])) for sample in data["result"]]

    def wait_for(self, expr: str, within: float = 30) -> list[tuple[dict[str, str], float]]:
        """Polls `expr` until it has a series with a value other than 0 and NaN (the sample a
        scrape or a rule evaluation brings); returns that vector."""
        deadline = time.monotonic() + within
        while True:
            found = self.query(expr)
            if any(value != 0 and not math.isnan(value) for _labels, value in found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr} read {found} for {within}s")
            time.sleep(0.2)

    def alerts(self) -> dict[str, str]:
        """The state (`pending` or `firing`) of each alert that is active, by name."""
        return {
            alert["labels"]["alertname"]: alert["state"] for alert in self.api("alerts")["alerts"]
        }


def scrape_config(
    targets: Sequence[str], *, interval: str = "1s", rule_files: Sequence[Path] = ()
) -> dict[str, Any]:
    """A configuration scraping each of `targets` (`host:port`, path `/metrics`) every
    `interval`, evaluating `rule_files` as often."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": "pixelfleet",
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }


@contextmanager
def prometheus_server(
    directory: Path,
    targets: Sequence[str],
    *,
    interval: str = "1s",
    rule_files: Sequence[Path] = (),
) -> Iterator[PrometheusServer]:
    """A real Prometheus on a free loopback port scraping `targets`, once it is ready; its
    configuration, TSDB and log in `directory`; stopped on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(scrape_config(targets, interval=interval, rule_files=rule_files))
    )
    port = free_port()
    log_path = directory / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                prometheus_executable(),
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = PrometheusServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited early:\n{server.log()}")
            try:
                if httpx.get(f"{server.base_url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not get ready:\n{server.log()}")
            time.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
