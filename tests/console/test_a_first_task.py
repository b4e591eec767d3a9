"""A new visitor's first minutes: sign up, drop a photo, resize it to WebP, watch it finish,
preview it, download it; and what a visitor without credits is told."""

from __future__ import annotations

import random
import re

from PIL import Image
from playwright.sync_api import Page, expect

from tests.console.conftest import SIGNUP_CREDITS, Shots
from tests.console.console_page import Console, new_email, unseen_photo
from tests.harness.embedded import RunningPlatform

RESIZED_WIDTH = 800
BY = "\N{MULTIPLICATION SIGN}"  # the console writes sizes as "800 by 600" with this sign


def test_a_new_user_signs_up_drops_a_photo_and_downloads_it_as_webp(
    page: Page, console: RunningPlatform, shots: Shots
) -> None:
    image = unseen_photo(random.Random())
    visitor = Console(page, console.base_url)
    visitor.open()
    shots.take("welcome")

    visitor.sign_up(new_email())
    expect(visitor.heading("New task")).to_be_visible()
    expect(page.get_by_role("link", name=f"{SIGNUP_CREDITS} credits")).to_be_visible()

    visitor.drop(image)
    expect(visitor.drop_zone).to_contain_text(f"{image.width} {BY} {image.height}")
    resize = visitor.add_step("resize")
    resize.get_by_label("Width").fill(str(RESIZED_WIDTH))
    visitor.output_format("webp")
    # The price is the API's quote, with the output it foresees.
    expect(page.get_by_text(f"Cost: 3 credits (makes {RESIZED_WIDTH} {BY} ")).to_be_visible()
    shots.take("pipeline")

    streams: list[str] = []
    page.on("request", lambda sent: streams.append(sent.url) if "/events" in sent.url else None)
    visitor.submit()
    expect(visitor.progress_text).to_have_text("100 %", timeout=60_000)
    expect(page.get_by_text("Done", exact=True)).to_be_visible()
    assert streams, "the task page follows the task's server-sent events"
    result = page.get_by_role("img", name=re.compile("^Result"))
    expect(result).to_be_visible()
    expected_height = round(image.height * RESIZED_WIDTH / image.width)
    size = f"WEBP, {RESIZED_WIDTH} {BY} {expected_height}"
    expect(result).to_have_accessible_name(re.compile(size))
    assert result.evaluate("(img) => [img.complete, img.naturalWidth]") == [True, RESIZED_WIDTH]
    expect(page.get_by_role("link", name="0 credits")).to_be_visible()
    shots.take("done")

    with page.expect_download() as started:
        page.get_by_role("link", name=re.compile("^Download")).click()
    download = started.value
    assert download.suggested_filename.endswith(".webp")
    saved = Image.open(download.path())
    assert saved.format == "WEBP"
    assert saved.size == (RESIZED_WIDTH, expected_height)


def test_a_user_without_credits_is_told_what_the_task_costs(
    page: Page, console: RunningPlatform, shots: Shots
) -> None:
    rng = random.Random()
    visitor = Console(page, console.base_url)
    visitor.new_account()

    for attempt in range(2):  # the first task spends every credit, the second is refused
        visitor.choose(unseen_photo(rng))
        visitor.add_step("resize").get_by_label("Width").fill("640")
        visitor.output_format("webp")
        visitor.submit()
        if attempt == 0:
            expect(visitor.progress_text).to_have_text("100 %", timeout=60_000)
            page.get_by_role("link", name="Process another image").click()

    expect(visitor.alert).to_contain_text(
        re.compile(r"This task costs \d+ credits, more than the balance\. Buy credits to continue")
    )
    expect(visitor.alert.get_by_role("link", name="Buy credits")).to_be_visible()
    expect(visitor.heading("New task")).to_be_visible()  # the form stays, nothing was queued
    shots.take("refused")

    visitor.alert.get_by_role("link", name="Buy credits").click()
    expect(visitor.heading("Credits")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="not available")).to_be_visible()
    shots.take("no-payments")
