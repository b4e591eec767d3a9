"""Real images made by other software (see SOURCES.md): `real_image(name)` reads one."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def real_image(name: str) -> bytes:
    return (HERE / name).read_bytes()
