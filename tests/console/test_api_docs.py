"""The API's interactive documentation works with no internet: Swagger UI at `/docs` and ReDoc
at `/redoc` load every script, style and icon from the server itself, in a real headless
Chromium that may reach nothing but the server. In Swagger UI a visitor authorizes with the
OAuth2 password flow, submits a task with "Try it out" as the form comes (no field to correct
first), and sees its result image previewed."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from playwright.sync_api import ConsoleMessage, Locator, Page, Route, expect

from tests.console.console_page import PASSWORD, new_email
from tests.harness.embedded import RunningPlatform

PIPELINE = {"operations": [{"op": "resize", "width": 64}], "output": {"format": "png"}}
# ReDoc's sidebar credits Redocly with a logo from Redocly's CDN; the page's policy refuses it
# and ReDoc hides the image when it does not load. Nothing else is ever refused.
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@dataclass
class Offline:
    """What the page tried to reach beyond the server (refused here, as an air-gapped
    network would), and what the page's security policy refused."""

    origin: str
    outside: list[str] = field(default_factory=list)
    refused_by_policy: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(("blob:", "data:")) or _origin(url) == self.origin:
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.refused_by_policy.append(message.text)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture
def offline(page: Page, console: RunningPlatform) -> Iterator[Offline]:
    watched = Offline(_origin(console.base_url))
    page.context.route("**/*", watched.route)
    page.on("console", watched.console)
    yield watched
    assert watched.outside == [], "the page reached beyond the server"


def operation(page: Page, method: str, path: str) -> Locator:
    """One operation's block in Swagger UI, opened."""
    block = page.locator(f".opblock-{method}:has(.opblock-summary-path[data-path='{path}'])")
    block.locator(".opblock-summary").click()
    return block


def a_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_swagger_ui_authorizes_submits_a_task_and_previews_its_result_offline(
    page: Page, console: RunningPlatform, offline: Offline
) -> None:
    email = new_email()
    registered = httpx.post(
        f"{console.base_url}/v1/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert registered.status_code == 202, registered.text

    page.goto(f"{console.base_url}/docs")
    expect(page.get_by_role("heading", name=re.compile(r"^PixelFleet"), level=1)).to_be_visible()

    # Authorize: the OAuth2 password flow, with the account's email and password.
    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".modal-ux")
    dialog.get_by_role("textbox", name="username:").fill(email)
    dialog.get_by_role("textbox", name="password:").fill(PASSWORD)
    dialog.get_by_role("button", name="Apply given OAuth2 credentials").click()
    expect(dialog.get_by_role("button", name="Remove authorization").first).to_be_visible()
    dialog.get_by_role("button", name="Close").first.click()

    # Submit a task: an image and a pipeline; every other field as Swagger UI fills it in.
    submit = operation(page, "post", "/v1/tasks")
    submit.get_by_role("button", name="Try it out").click()
    submit.locator("input[type=file]").set_input_files(
        files=[{"name": "red.png", "mimeType": "image/png", "buffer": a_png(320, 240)}]
    )
    submit.get_by_role("textbox", name="pipeline").fill(json.dumps(PIPELINE))
    submit.get_by_role("button", name="Execute").click()
    answer = submit.locator(".live-responses-table")
    expect(answer.locator("tbody .response-col_status")).to_have_text("202")
    task = json.loads(answer.locator(".response-col_description .microlight").first.inner_text())
    assert task["callback_url"] is None  # nothing filled in on the visitor's behalf

    token = httpx.post(
        f"{console.base_url}/v1/auth/token", data={"username": email, "password": PASSWORD}
    ).json()["access_token"]
    finished = httpx.get(
        f"{console.base_url}/v1/tasks/{task['id']}",
        params={"wait": 30},
        headers={"Authorization": f"Bearer {token}"},
        timeout=40,
    ).json()
    assert finished["status"] == "succeeded", finished

    # Download the result: Swagger UI shows the image itself.
    download = operation(page, "get", "/v1/tasks/{task_id}/result")
    download.get_by_role("button", name="Try it out").click()
    download.get_by_role("textbox", name="task_id").fill(task["id"])
    download.get_by_role("button", name="Execute").click()
    preview = download.locator(".live-responses-table img")
    expect(preview).to_be_visible()
    assert preview.evaluate("image => [image.naturalWidth, image.naturalHeight]") == [64, 48]

    assert offline.refused_by_policy == []


def test_redoc_renders_the_whole_reference_offline(
    page: Page, console: RunningPlatform, offline: Offline
) -> None:
    page.goto(f"{console.base_url}/redoc")
    expect(page.get_by_role("heading", name=re.compile(r"^PixelFleet"), level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Submit Task", level=2)).to_be_attached()

    page.get_by_role("textbox", name="Search").fill("download")
    expect(page.locator("[role=search]").get_by_text("Download Result")).to_be_visible()

    assert all(REDOCLY_LOGO in refused for refused in offline.refused_by_policy)


def test_the_pages_allow_scripts_of_their_own_origin_only(console: RunningPlatform) -> None:
    for path in ("/docs", "/redoc"):
        answer = httpx.get(f"{console.base_url}{path}")
        assert answer.status_code == 200
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "<script>" not in answer.text  # every script is a file of this server
