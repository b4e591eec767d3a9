"""No example in the OpenAPI document names a real host: "Try it out" in /docs sends the examples
as they are, and the server would fetch from, or deliver to, whoever answers there. Example URLs
use the reserved names of RFC 2606 and RFC 6761 (`.example`, `.invalid`, `.test`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from pixelfleet.errors import PROBLEM_BASE

RESERVED = (".example", ".invalid", ".test", ".localhost")


def example_values(node: Any, inside_example: bool = False) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from example_values(value, inside_example or key in {"example", "examples"})
    elif isinstance(node, list):
        for item in node:
            yield from example_values(item, inside_example)
    elif isinstance(node, str) and inside_example:
        yield node


async def test_every_example_url_names_a_reserved_host(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    urls = [value for value in example_values(document) if value.startswith(("http://", "https://"))]
    assert urls, "the document has example URLs to check"
    # A problem's `type` is a name, never fetched.
    fetched = [url for url in urls if not url.startswith(PROBLEM_BASE)]
    real = {url for url in fetched if not (urlsplit(url).hostname or "").endswith(RESERVED)}
    assert real == set()
