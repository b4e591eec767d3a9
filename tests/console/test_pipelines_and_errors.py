"""The pipeline form is the catalogue's: every operation and parameter the API offers, and
the API's own words when it refuses one."""

from __future__ import annotations

import random
import re
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.console.conftest import Shots
from tests.console.console_page import Console, new_email, unseen_photo
from tests.harness.embedded import RunningPlatform


def _catalogue(base_url: str) -> dict[str, Any]:
    catalogue: dict[str, Any] = httpx.get(f"{base_url}/v1/operations").json()
    return catalogue


def _shown_parameters(schema: dict[str, Any]) -> list[str]:
    """Every parameter but the fixed `op`, by its title."""
    return [
        str(spec.get("title", name))
        for name, spec in schema["properties"].items()
        if "const" not in spec
    ]


def _with_a_photo(page: Page, console: RunningPlatform) -> Console:
    """A new account's visitor on the new-task page, a photo chosen."""
    visitor = Console(page, console.base_url)
    visitor.new_account()
    visitor.choose(unseen_photo(random.Random()))
    return visitor


def test_every_operation_of_the_catalogue_can_be_added_with_all_its_parameters(
    page: Page, console: RunningPlatform, shots: Shots
) -> None:
    catalogue = _catalogue(console.base_url)
    visitor = Console(page, console.base_url)
    visitor.new_account()

    offered = page.get_by_label("Operation", exact=True).locator("option")
    expect(offered).to_have_count(len(catalogue["operations"]))
    assert offered.evaluate_all("(options) => options.map((o) => o.value)") == [
        operation["name"] for operation in catalogue["operations"]
    ]
    for number, operation in enumerate(catalogue["operations"], start=1):
        step = visitor.add_step(operation["name"])
        credits = "credit" if operation["price"] == 1 else "credits"
        expect(step.locator("legend")).to_have_text(
            f"Step {number}: {operation['name']} ({operation['price']} {credits})"
        )
        for title in _shown_parameters(operation["parameters"]):
            expect(step.get_by_label(title, exact=False).first).to_be_attached()
    shots.take("every-operation")

    formats = page.get_by_label("Format", exact=True).locator("option")
    assert formats.evaluate_all("(options) => options.map((o) => o.value)") == [
        "",
        *(entry["format"] for entry in catalogue["output_formats"]),
    ]


def test_a_value_the_api_refuses_is_explained_beside_its_field(
    page: Page, console: RunningPlatform, shots: Shots
) -> None:
    visitor = _with_a_photo(page, console)
    resize = visitor.add_step("resize")
    resize.get_by_label("Width").fill("400")
    resize.get_by_label("Background").fill("not-a-colour")
    crop = visitor.add_step("crop")
    crop.get_by_label("Width (required)").fill("100")
    crop.get_by_label("Height (required)").fill("100")
    crop.get_by_label("X", exact=True).fill("5")  # x without y
    visitor.submit()

    expect(visitor.alert).to_contain_text("The pipeline is invalid")
    background = resize.get_by_label("Background")
    expect(background).to_have_attribute("aria-invalid", "true")
    expect(background).to_have_accessible_description(
        "Padding colour for contain. Unknown colour 'not-a-colour'"
    )
    expect(background).to_be_focused()
    expect(crop).to_contain_text("give x and y together")
    shots.take("field-errors")

    background.fill("#336699")
    crop.get_by_label("Y", exact=True).fill("5")
    visitor.submit()
    expect(visitor.progress_text).to_have_text("100 %", timeout=60_000)


def test_the_browser_asks_for_a_required_parameter_before_sending(
    page: Page, console: RunningPlatform
) -> None:
    visitor = _with_a_photo(page, console)
    thumbnail = visitor.add_step("thumbnail")
    thumbnail.get_by_label("Width (required)").fill("64")
    visitor.submit()

    height = thumbnail.get_by_label("Height (required)")
    assert height.evaluate("(input) => input.validity.valueMissing") is True
    expect(visitor.heading("New task")).to_be_visible()


def test_wrong_credentials_are_refused_with_the_api_s_message(
    page: Page, console: RunningPlatform
) -> None:
    visitor = Console(page, console.base_url)
    visitor.open()
    visitor.log_in(new_email(), "not the password at all")
    expect(visitor.alert).to_be_visible()
    expect(visitor.heading("Process images for credits")).to_be_visible()


def test_a_weak_password_is_refused_with_advice(page: Page, console: RunningPlatform) -> None:
    visitor = Console(page, console.base_url)
    visitor.open()
    visitor.sign_up(new_email(), password="password1")
    expect(visitor.alert).to_contain_text("password")
    expect(visitor.heading("Process images for credits")).to_be_visible()


def test_a_focal_point_is_chosen_in_the_form_and_reaches_the_task(
    page: Page, console: RunningPlatform
) -> None:
    visitor = _with_a_photo(page, console)
    crop = visitor.add_step("crop")
    crop.get_by_label("Width (required)").fill("100")
    crop.get_by_label("Height (required)").fill("80")
    gravity = crop.get_by_label("Gravity")
    expect(crop.get_by_label("Focal point x")).to_be_hidden()
    gravity.select_option("(point)")
    crop.get_by_label("Focal point x").fill("0.25")
    crop.get_by_label("Focal point y").fill("0.75")

    task = visitor.submit_task()

    assert task["pipeline"]["operations"][0]["gravity"] == {"x": 0.25, "y": 0.75}
    expect(visitor.progress_text).to_have_text("100 %", timeout=60_000)


def test_a_placeholder_asked_in_the_form_is_shown_with_the_result(
    page: Page, console: RunningPlatform
) -> None:
    visitor = _with_a_photo(page, console)
    visitor.add_step("grayscale")
    page.get_by_label("Placeholder", exact=True).select_option("blurhash")
    task = visitor.submit_task()
    assert task["pipeline"]["output"]["placeholder"] == "blurhash"
    expect(visitor.progress_text).to_have_text("100 %", timeout=60_000)

    shown = page.locator(".placeholder")
    expect(shown).to_contain_text(re.compile(r"Placeholder: \S{28} on #[0-9a-f]{6}"))
    colour = shown.inner_text().rsplit(" on ", 1)[1].strip()
    result = page.get_by_role("img", name=re.compile("^Result"))
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    expect(result).to_have_css("background-color", f"rgb({red}, {green}, {blue})")
