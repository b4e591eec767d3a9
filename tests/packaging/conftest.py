"""One real helm, with its homes in a temporary folder, for every packaging test."""

from __future__ import annotations

import pytest

from tests.harness.helm import Helm


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(tmp_path_factory.mktemp("helm"))
