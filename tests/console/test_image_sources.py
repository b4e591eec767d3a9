"""An image for a task without a file from this computer: the address of one on the web, or the
image of an earlier task ("run another pipeline"); the price shown is the API's quote."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.console.console_page import Console, unseen_photo
from tests.harness.embedded import RunningPlatform
from tests.harness.image_host import Answer, ImageHost, image_host


@pytest.fixture
def host() -> Iterator[ImageHost]:
    with image_host() as serving:
        yield serving


def test_an_image_named_by_its_address_is_fetched_and_processed(
    page: Page, console: RunningPlatform, host: ImageHost
) -> None:
    image = unseen_photo(random.Random())
    url = host.serve("/" + image.name, Answer(body=image.data))
    visitor = Console(page, console.base_url)
    visitor.new_account()
    page.get_by_label("Or the address of an image on the web").fill(url)
    visitor.add_step("grayscale")
    expect(page.get_by_text(re.compile(r"Cost: \d+ credits"))).to_be_visible()
    visitor.submit()
    expect(visitor.progress_text).to_have_text("100 %", timeout=60_000)
    expect(page.get_by_text(f"the web address {url}")).to_be_visible()
    assert "/" + image.name in host.requests  # by the API: for its quotes, and for the task


def test_another_pipeline_runs_on_a_finished_task_s_image_without_a_new_upload(
    page: Page, console: RunningPlatform
) -> None:
    image = unseen_photo(random.Random())
    visitor = Console(page, console.base_url)
    visitor.new_account()
    visitor.drop(image)
    visitor.submit()
    expect(visitor.progress_text).to_have_text("100 %", timeout=60_000)
    first = page.url

    uploads: list[str] = []
    page.on(
        "request",
        lambda sent: uploads.append(sent.url)
        if "multipart/form-data" in (sent.headers.get("content-type") or "")
        else None,
    )
    page.get_by_role("link", name="Run another pipeline on this image").click()
    expect(page.get_by_text("The image of an earlier task")).to_be_visible()
    visitor.add_step("flip")
    expect(page.get_by_text(re.compile(r"Cost: \d+ credits"))).to_be_visible()
    visitor.submit()
    expect(visitor.progress_text).to_have_text("100 %", timeout=60_000)
    assert page.url != first
    assert uploads == []  # the image was named, not sent again


def test_a_chosen_image_is_sent_once_ahead_of_the_task_and_named_by_its_quotes_and_task(
    page: Page, console: RunningPlatform
) -> None:
    image = unseen_photo(random.Random())
    sent: list[tuple[str, str, str | None]] = []
    page.on(
        "request",
        lambda request: sent.append(
            (request.method, request.url, request.headers.get("authorization"))
        ),
    )
    named: list[str] = []
    page.on(
        "request",
        lambda request: named.append(request.post_data or "")
        if request.url.endswith(("/v1/quotes", "/v1/tasks")) and request.method == "POST"
        else None,
    )
    visitor = Console(page, console.base_url)
    visitor.new_account()
    visitor.drop(image)
    visitor.add_step("grayscale")
    visitor.add_step("flip")
    expect(page.get_by_text(re.compile(r"Cost: \d+ credits"))).to_be_visible()
    visitor.submit()
    expect(visitor.progress_text).to_have_text("100 %", timeout=60_000)

    expect(page.get_by_text("a file uploaded ahead of the task")).to_be_visible()
    puts = [(url, auth) for method, url, auth in sent if method == "PUT"]
    assert len(puts) == 1, sent  # the bytes went once, whatever the quotes
    [(url, authorization)] = puts
    assert re.search(r"/v1/uploads/[0-9a-f-]{36}/content\?token=", url)
    assert authorization is None  # the URL is the credential
    upload_id = url.split("/v1/uploads/")[1].split("/")[0]
    assert len(named) >= 2  # at least one quote, and the task
    assert all(f'"upload":"{upload_id}"' in body.replace(" ", "") for body in named), named
