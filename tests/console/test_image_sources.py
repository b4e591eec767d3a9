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
    assert "/" + image.name in host.requests


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
