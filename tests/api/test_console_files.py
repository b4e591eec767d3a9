"""The console's page and files as the API serves them: locked down by their headers, kept
out of the API's schema, and a missing file is a problem document like any other 404."""

from __future__ import annotations

import re

import httpx

from pixelfleet.console import ASSETS
from tests.api_helpers import PROBLEM


async def test_the_console_page_is_served_at_the_root_with_a_strict_policy(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self' https://checkout.razorpay.com" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-cache"
    assert (await client.head("/")).status_code == 200


async def test_every_file_the_page_names_is_served(client: httpx.AsyncClient) -> None:
    page = (await client.get("/")).text
    named = re.findall(r'(?:src|href)="(/console/[^"]+)"', page)
    assert len(named) >= 2
    for path in named:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["x-content-type-options"] == "nosniff"


def test_every_module_the_scripts_import_exists() -> None:
    scripts = list((ASSETS / "js").rglob("*.js"))
    for script in scripts:
        for imported in re.findall(r'from "(\.[^"]+)"', script.read_text()):
            assert (script.parent / imported).resolve().is_file(), (script, imported)


async def test_a_missing_console_file_is_a_problem_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/console/js/nothing-here.js")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_nothing_outside_the_console_folder_is_served(client: httpx.AsyncClient) -> None:
    for path in ("/console/..%2F__init__.py", "/console/%2e%2e/__init__.py"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert "ASSETS" not in response.text


async def test_the_console_is_not_part_of_the_api_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/" not in paths
    assert not any(path.startswith("/console") for path in paths)


def test_the_console_takes_its_prices_from_quotes_and_holds_no_pricing_formula() -> None:
    """One place for the price: the console asks `POST /v1/quotes`, and none of its scripts
    reads the catalogue's pricing terms to work one out itself."""
    scripts = {path.name: path.read_text() for path in ASSETS.rglob("*.js")}
    assert any("/v1/quotes" in text for text in scripts.values())
    for term in ("base_price", "megapixels_per_extra_credit", "size_target_price"):
        assert not [name for name, text in scripts.items() if term in text], term
