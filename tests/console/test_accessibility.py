"""The console for everyone: no axe-core violations on any page, usable with the keyboard
alone, readable on a phone, and a login that survives a reload but not a logout."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.console.conftest import Shots
from tests.console.console_page import PASSWORD, Console, new_email, unseen_photo
from tests.harness.embedded import RunningPlatform

PHONE = {"width": 390, "height": 844}


def _violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A and AA rules, as run on the page as it is now."""
    options = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
    results = Axe().run(page, options=options)
    return [
        {
            "rule": violation["id"],
            "help": violation["help"],
            "where": [node["target"] for node in violation["nodes"]],
        }
        for violation in results.response["violations"]
    ]


def _visit_every_page(visitor: Console, check: Any) -> None:
    page = visitor.page
    visitor.open()
    expect(visitor.heading("Process images for credits")).to_be_visible()
    check("welcome")
    visitor.sign_up(new_email())
    expect(visitor.heading("New task")).to_be_visible()
    visitor.choose(unseen_photo(random.Random()))
    visitor.add_step("resize").get_by_label("Width").fill("320")
    check("new-task")
    visitor.submit()
    expect(visitor.progress_text).to_have_text("100 %", timeout=60_000)
    expect(page.get_by_role("img", name=re.compile("^Result"))).to_be_visible()
    check("task")
    visitor.go_to("Tasks")
    expect(page.locator("tbody tr")).to_have_count(1)
    check("tasks")
    visitor.go_to("Credits")
    expect(page.locator("tbody tr")).to_have_count(2)
    check("credits")
    visitor.go_to("Settings")
    expect(visitor.heading("Settings")).to_be_visible()
    check("settings")
    deletion = page.get_by_role("region", name="Delete your account")
    deletion.get_by_label("Your password").fill(PASSWORD)
    deletion.get_by_role("button", name="Delete my account…").click()
    expect(deletion.get_by_role("button", name="Keep my account")).to_be_visible()
    check("settings-delete-confirmation")
    # The pages a mailed link opens (here with a token nobody mailed).
    page.goto(f"{visitor.base_url}/reset-password?token=made-up")
    expect(visitor.heading("Reset your password")).to_be_visible()
    check("reset-password")
    page.goto(f"{visitor.base_url}/verify-email?token=made-up")
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    check("verify-email")


def test_no_page_has_an_accessibility_violation(
    page: Page, console: RunningPlatform, shots: Shots
) -> None:
    found: dict[str, list[dict[str, Any]]] = {}

    def check(name: str) -> None:
        found[name] = _violations(page)

    _visit_every_page(Console(page, console.base_url), check)
    assert {name: violations for name, violations in found.items() if violations} == {}
    assert set(found) == {
        "welcome",
        "new-task",
        "task",
        "tasks",
        "credits",
        "settings",
        "settings-delete-confirmation",
        "reset-password",
        "verify-email",
    }


@pytest.mark.parametrize("viewport", [PHONE], ids=["phone"])
def test_every_page_fits_a_phone_screen(
    page: Page, console: RunningPlatform, shots: Shots, viewport: dict[str, int]
) -> None:
    page.set_viewport_size(viewport)
    overflowing: dict[str, int] = {}

    def check(name: str) -> None:
        shots.take(name)
        width = page.evaluate("() => document.documentElement.scrollWidth")
        if width > viewport["width"]:
            overflowing[name] = width

    _visit_every_page(Console(page, console.base_url), check)
    assert overflowing == {}


def test_a_keyboard_alone_signs_up_and_moves_around(
    page: Page, console: RunningPlatform, shots: Shots
) -> None:
    visitor = Console(page, console.base_url)
    visitor.open()
    expect(visitor.heading("Process images for credits")).to_be_visible()
    keyboard = page.keyboard

    keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    keyboard.press("Enter")
    expect(visitor.heading("Process images for credits")).to_be_focused()
    sign_up = page.get_by_role("form", name="Create an account")
    while not sign_up.get_by_label("Email").evaluate("(input) => input === document.activeElement"):
        keyboard.press("Tab")
    keyboard.type(new_email())
    keyboard.press("Tab")
    expect(sign_up.get_by_label("Password")).to_be_focused()
    keyboard.type(PASSWORD)
    keyboard.press("Enter")

    heading = visitor.heading("New task")
    expect(heading).to_be_focused()  # each new page starts at its heading
    expect(page.get_by_label("Operation", exact=True)).to_be_visible()
    page.get_by_label("Operation", exact=True).focus()
    keyboard.press("Tab")
    expect(page.get_by_role("button", name="Add step")).to_be_focused()
    keyboard.press("Enter")
    expect(page.locator("fieldset.step")).to_have_count(1)
    expect(page.locator("fieldset.step").get_by_label("Width")).to_be_focused()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").focus()
    keyboard.press("Enter")
    expect(visitor.heading("Tasks")).to_be_focused()
    shots.take("tasks-by-keyboard")


def test_tabs_share_one_login_and_refresh_it_without_ending_it(
    page: Page, console: RunningPlatform
) -> None:
    visitor = Console(page, console.base_url)
    visitor.new_account()
    other = Console(page.context.new_page(), console.base_url)
    other.open()
    expect(other.heading("New task")).to_be_visible()

    # Both tabs find the access token expired at once: one refreshes, the other takes the
    # new pair instead of reusing the old refresh token (which would end the login).
    page.evaluate(
        """() => {
          const pair = JSON.parse(localStorage.getItem("pixelfleet.session"));
          localStorage.setItem("pixelfleet.session", JSON.stringify({...pair, access_token: "x"}));
        }"""
    )
    page.reload(wait_until="commit")
    other.page.reload(wait_until="commit")
    for tab in (visitor, other):
        expect(tab.heading("New task")).to_be_visible()
        tab.go_to("Credits")
        expect(tab.page.locator(".balance")).to_have_text(re.compile(r"^\d+ credits$"))

    page.get_by_role("button", name="Log out").click()
    expect(visitor.heading("Process images for credits")).to_be_visible()
    expect(other.heading("Process images for credits")).to_be_visible()


def test_a_reload_keeps_the_login_and_logging_out_ends_it(
    page: Page, console: RunningPlatform
) -> None:
    visitor = Console(page, console.base_url)
    email = visitor.new_account()
    visitor.go_to("Credits")
    expect(visitor.heading("Credits")).to_be_visible()

    page.reload()
    expect(visitor.heading("Credits")).to_be_visible()
    expect(page.get_by_text(email)).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    expect(visitor.heading("Process images for credits")).to_be_visible()
    page.reload()
    expect(visitor.heading("Process images for credits")).to_be_visible()

    visitor.log_in(email)
    expect(visitor.heading("Credits")).to_be_visible()
