"""`pixelfleet smoke-test URL` (what `helm test` runs in the cluster) against a real `pixelfleet
up`: it passes on a working deployment and says which step failed on a broken one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.api_helpers import PASSWORD
from tests.harness.embedded import RunningPlatform, pixelfleet_up
from tests.harness.ports import free_port


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    with pixelfleet_up(tmp_path_factory.mktemp("smoke") / "data", workers=1) as running:
        yield running


def _smoke_test(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pixelfleet", "smoke-test", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_working_deployment_passes_every_step(platform: RunningPlatform) -> None:
    result = _smoke_test(platform.base_url, "--timeout", "60")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "the API is live and ready"
    assert lines[-1] == "smoke test passed"
    assert any(line.endswith("succeeded and its result came back") for line in lines)


def test_it_can_sign_in_as_an_existing_account(platform: RunningPlatform) -> None:
    email = "ops-smoke@example.com"
    registered = httpx.post(
        f"{platform.base_url}/v1/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert registered.status_code == 202
    passed = _smoke_test(platform.base_url, "--email", email, "--password", PASSWORD)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert f"signed in as {email}" in passed.stdout

    refused = _smoke_test(platform.base_url, "--email", email, "--password", "not the password")
    assert refused.returncode == 1
    assert "smoke test failed: sign-in: expected HTTP 200, got 401" in refused.stderr


def test_an_unreachable_deployment_fails_with_the_reason() -> None:
    result = _smoke_test(f"http://127.0.0.1:{free_port()}", "--timeout", "5")
    assert result.returncode == 1
    assert "smoke test failed" in result.stderr


def test_email_and_password_go_together() -> None:
    result = _smoke_test("http://127.0.0.1:1", "--email", "a@example.com")
    assert result.returncode == 2
    assert "--email and --password go together" in result.stderr
