"""Debian's Chromium, for the console's browser tests: found on PATH, or installed with
apt-get when the tests run as root on a machine without it."""

from __future__ import annotations

import os
import shutil
import subprocess

# Headless, and quiet on a machine whose network reaches nothing but loopback.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_NAMES = ("chromium", "chromium-browser")


def _found() -> str | None:
    for name in _NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _apt_install() -> None:
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(install, env=environment, capture_output=True).returncode == 0:
        return
    subprocess.run(["apt-get", "update"], env=environment, capture_output=True, check=True)
    subprocess.run(install, env=environment, capture_output=True, check=True)


def chromium_executable() -> str:
    """The path of a Chromium binary, installing Debian's package if there is none."""
    path = _found()
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        _apt_install()
        path = _found()
    if path is None:
        raise RuntimeError(
            "Chromium was not found and could not be installed: "
            "install it (Debian: apt-get install chromium)"
        )
    return path
