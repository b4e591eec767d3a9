"""Results where the web uses them: the console shows each output by its signed URL (no token,
no blob), copies it, and makes a derivative URL with a `<picture>` snippet; a plain page of
another origin shows a signed result in `<img>` and a derivative in `<picture>`, where Chromium
gets the AVIF its `Accept` names."""

from __future__ import annotations

import random
import re

import httpx
from playwright.sync_api import Page, Response, expect

from tests.api_helpers import image_bytes
from tests.console.conftest import Shots
from tests.console.console_page import Console, new_email, unseen_photo
from tests.harness.embedded import RunningPlatform
from tests.live_api import ledger, sign_in, submit, wait_final

IMMUTABLE = "public, max-age=31536000, immutable"


def test_a_result_is_shown_by_its_signed_url_and_made_into_an_image_url_with_a_snippet(
    page: Page, console: RunningPlatform, shots: Shots
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console.base_url)
    visitor = Console(page, console.base_url)
    visitor.new_account()
    visitor.drop(unseen_photo(random.Random()))
    visitor.submit()  # no steps: the image as it is, for 1 credit
    expect(visitor.progress_text).to_have_text("100 %", timeout=60_000)

    result = page.get_by_role("img", name=re.compile("^Result"))
    expect(result).to_be_visible()
    source = result.evaluate("(img) => img.currentSrc")
    assert source.startswith(f"{console.base_url}/v1/results/")  # not a blob: the URL itself
    assert result.evaluate("(img) => img.complete && img.naturalWidth > 0")
    page.get_by_role("button", name=re.compile("^Copy URL of")).click()
    expect(page.get_by_role("status").filter(has_text="copied")).to_be_visible()
    assert page.evaluate("() => navigator.clipboard.readText()") == source
    expect(page.get_by_text(re.compile("The URL works until"))).to_be_visible()

    panel = page.get_by_role("region", name="Image URL for web pages")
    # This task's own pipeline, saved as a preset under the name offered.
    expect(panel.get_by_label("Preset", exact=True)).to_have_value("*")
    panel.get_by_role("button", name="Create image URL").click()
    made = panel.get_by_label("Image URL")
    expect(made).to_have_value(re.compile(f"^{re.escape(console.base_url)}/v1/images/"))
    url = made.input_value()
    preview = panel.get_by_role("img", name=re.compile("^Image made by the preset"))
    expect(preview).to_be_visible()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=preview.element_handle()
    )
    snippet = panel.locator("pre code")
    expect(snippet).to_contain_text("<picture>")
    expect(snippet).to_contain_text(f'<source type="image/avif" srcset="{url}">')
    panel.get_by_role("button", name="Copy <picture> snippet").click()
    assert page.evaluate("() => navigator.clipboard.readText()") == snippet.inner_text()
    shots.take("image-url")

    # Without any credential, the URL is the image, kept by caches for a year.
    with httpx.Client() as stranger:
        answer = stranger.get(url)
    assert (answer.status_code, answer.headers["cache-control"]) == (200, IMMUTABLE)


def test_a_page_shows_a_signed_result_in_img_and_a_derivative_in_picture(
    page: Page, console: RunningPlatform, shots: Shots
) -> None:
    with httpx.Client(base_url=console.base_url, timeout=30) as http:
        owner = sign_in(http, new_email())
        submitted = submit(http, owner, {}, image_bytes("PNG", (300, 200)))
        task = wait_final(http, owner, submitted["id"])
        result_url = console.base_url + task["result"]["url"]

        # Another account, whose 3 credits pay for one AVIF of its asset.
        publisher = sign_in(http, new_email())
        asset = http.post(
            "/v1/assets",
            headers=publisher,
            files={"file": ("photo.jpg", image_bytes("JPEG", (640, 480)), "image/jpeg")},
        )
        preset = http.put(
            "/v1/presets/hero",
            headers=publisher,
            json={"pipeline": {"output": {"format": "auto"}}},
        )
        signed = http.post(
            "/v1/image-urls",
            headers=publisher,
            json={"source": {"asset": asset.json()["id"]}, "preset": "hero"},
        )
        assert (asset.status_code, preset.status_code, signed.status_code) == (201, 201, 201)
        image_url = console.base_url + signed.json()["url"]

    answers: dict[str, Response] = {}
    page.on("response", lambda answer: answers.setdefault(answer.url, answer))
    # A page of another origin (about:blank): no cookies, no token, no CORS needed.
    page.set_content(
        f"""<!doctype html><title>A shop</title>
        <img id="result" src="{result_url}" alt="A result">
        <picture>
          <source type="image/avif" srcset="{image_url}">
          <source type="image/webp" srcset="{image_url}">
          <img id="hero" src="{image_url}" alt="A hero image">
        </picture>"""
    )
    page.wait_for_function(
        "() => [...document.images].every((img) => img.complete && img.naturalWidth > 0)",
        timeout=30_000,
    )
    sizes = page.evaluate(
        "() => [...document.images].map((img) => [img.id, img.naturalWidth, img.naturalHeight])"
    )
    assert sizes == [["result", 300, 200], ["hero", 640, 480]]
    shots.take("page")

    # Chromium names AVIF in its Accept: the derivative came as AVIF, for a year, varying.
    hero = answers[image_url]
    assert hero.status == 200
    assert hero.headers["content-type"] == "image/avif"
    assert hero.headers["cache-control"] == IMMUTABLE
    assert hero.headers["vary"] == "Accept"
    assert answers[result_url].headers["cache-control"].startswith("private, max-age=")

    page.reload()
    page.wait_for_function(
        "() => [...document.images].every((img) => img.complete && img.naturalWidth > 0)"
    )
    with httpx.Client(base_url=console.base_url, timeout=30) as http:
        debits = [e["amount"] for e in ledger(http, publisher) if e["kind"] == "task_debit"]
    assert debits == [-3]  # one AVIF, made once: 1 for the task, 2 for AVIF
