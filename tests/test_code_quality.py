"""The package type-checks under `mypy --strict` and the tree is `ruff` clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_the_package_passes_mypy_strict() -> None:
    result = _run("mypy", "--strict", "pixelfleet")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_tree_is_ruff_clean() -> None:
    result = _run("ruff", "check", "pixelfleet", "tests", "migrations", "bench")
    assert result.returncode == 0, result.stdout + result.stderr
