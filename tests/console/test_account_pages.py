"""The account pages of the console, in a real Chromium against `pixelfleet up` (its mail written
as .eml files under its data directory): a visitor who forgot their password asks for a link,
opens it, chooses a new password and logs in with it; the link's token leaves the address bar
at once, and a second use of the link is refused. On the settings page a user changes their
password and stays logged in, and confirms their email through a mailed link; rotates the
webhook secret (shown once, with a copy button), downloads a copy of their data as a JSON
file, and deletes their account after confirming it with their password, which logs them out
and says goodbye."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Page, expect

from tests.console.conftest import Shots
from tests.console.console_page import PASSWORD, Console
from tests.harness.embedded import RunningPlatform
from tests.mail.letters import link_in, token_in, wait_for_mail

NEW_PASSWORD = "amber lantern orchard 17"


def _on(console: RunningPlatform, link: str) -> str:
    """A mailed link, on the test's server: without PIXELFLEET_PUBLIC_URL the links name the
    address `pixelfleet up` serves by default, and the test's server has a port of its own."""
    return link.replace("http://127.0.0.1:8000", console.base_url, 1)


def test_a_forgotten_password_is_reset_through_the_mailed_link(
    page: Page, console: RunningPlatform, shots: Shots
) -> None:
    visitor = Console(page, console.base_url)
    email = visitor.new_account()
    page.get_by_role("button", name="Log out").click()

    forgotten = page.get_by_role("form", name="Forgot your password?")
    forgotten.get_by_label("Email").fill(email)
    forgotten.get_by_role("button", name="Send me a reset link").click()
    expect(forgotten.get_by_role("alert")).to_contain_text("If this email has an account")
    shots.take("link-asked-for")

    letter = wait_for_mail(console.data_dir, email, "Reset your")
    link = link_in(letter)
    page.goto(_on(console, link))
    expect(visitor.heading("Reset your password")).to_be_visible()
    assert "token" not in page.url  # the token is not kept in the address bar or history
    form = page.get_by_role("form", name="Choose a new password")
    form.get_by_label("New password").fill(NEW_PASSWORD)
    form.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password is changed")
    shots.take("password-reset")

    page.get_by_role("link", name="Log in").click()
    visitor.log_in(email, NEW_PASSWORD)
    expect(visitor.heading("New task")).to_be_visible()

    # The link worked once.
    page.goto(_on(console, link))
    form = page.get_by_role("form", name="Choose a new password")
    form.get_by_label("New password").fill("yet another long passphrase")
    form.get_by_role("button", name="Set the new password").click()
    expect(form.get_by_role("alert")).to_contain_text("not valid")
    # Whatever the server logged (the letter it wrote, the requests), never the token.
    assert email in console.log()
    assert token_in(letter) not in console.log()


def test_the_settings_page_changes_the_password_and_confirms_the_email(
    page: Page, console: RunningPlatform, shots: Shots
) -> None:
    visitor = Console(page, console.base_url)
    email = visitor.new_account()
    visitor.go_to("Settings")
    expect(visitor.heading("Settings")).to_be_visible()

    change = page.get_by_role("form", name="Change your password")
    change.get_by_label("Current password").fill(PASSWORD)
    change.get_by_label("New password").fill(NEW_PASSWORD)
    change.get_by_role("button", name="Change password").click()
    expect(change.get_by_role("alert")).to_contain_text("Your password is changed")
    # Still logged in: the console refreshes its login for an access token of the new password.
    visitor.go_to("Tasks")
    expect(visitor.heading("Tasks")).to_be_visible()
    assert "was changed" in str(wait_for_mail(console.data_dir, email, "was changed")["Subject"])

    visitor.go_to("Settings")
    page.get_by_role("button", name="Send a new confirmation link").click()
    expect(page.get_by_role("alert")).to_contain_text("a link is on its way")
    link = link_in(wait_for_mail(console.data_dir, email, "Confirm your email"))
    page.goto(_on(console, link))
    expect(page.get_by_role("status")).to_contain_text("Your email is confirmed")
    shots.take("email-confirmed")

    page.get_by_role("link", name="Go to the console").click()
    visitor.go_to("Settings")
    expect(page.get_by_text(f"{email}, confirmed on")).to_be_visible()


def test_the_settings_page_rotates_the_webhook_secret_and_downloads_the_data(
    page: Page, console: RunningPlatform, shots: Shots
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    visitor = Console(page, console.base_url)
    email = visitor.new_account()
    visitor.go_to("Settings")

    rotation = page.get_by_role("form", name="Webhook signing secret")
    rotation.get_by_role("button", name="Rotate the webhook secret").click()
    expect(rotation.get_by_role("alert")).to_contain_text("shown once")
    secret = rotation.get_by_label("New webhook secret").input_value()
    assert len(secret) >= 32
    rotation.get_by_role("button", name="Copy the new secret").click()
    expect(rotation.get_by_role("status")).to_have_text("The new secret is copied.")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    shots.take("webhook-secret-rotated")

    data = page.get_by_role("form", name="Download your data")
    with page.expect_download() as downloading:
        data.get_by_role("button", name="Download my data").click()
    download = downloading.value
    assert re.fullmatch(r"pixelfleet-export-\d{4}-\d{2}-\d{2}\.json", download.suggested_filename)
    document = json.loads(download.path().read_text())
    assert document["profile"]["email"] == email
    assert document["profile"]["webhook_secret_rotated"] is True
    assert secret not in download.path().read_text()
    expect(data.get_by_role("alert")).to_contain_text(download.suggested_filename)


def test_the_settings_page_deletes_the_account_after_its_password_and_a_confirmation(
    page: Page, console: RunningPlatform, shots: Shots
) -> None:
    visitor = Console(page, console.base_url)
    email = visitor.new_account()
    visitor.go_to("Settings")
    deletion = page.get_by_role("region", name="Delete your account")

    deletion.get_by_label("Your password").fill("not my password")
    deletion.get_by_role("button", name="Delete my account…").click()
    confirm = deletion.get_by_role("form", name="Delete your account for good?")
    expect(confirm).to_be_visible()
    expect(page.get_by_text("Delete your account for good?")).to_be_focused()
    confirm.get_by_role("button", name="Yes, delete my account").click()
    asking = deletion.get_by_role("form", name="Delete your account")
    expect(asking.get_by_role("alert")).to_contain_text("not this account's password")
    expect(visitor.heading("Settings")).to_be_visible()  # still logged in

    asking.get_by_label("Your password").fill(PASSWORD)
    asking.get_by_role("button", name="Delete my account…").click()
    confirm.get_by_role("button", name="Keep my account").click()
    expect(asking.get_by_label("Your password")).to_be_focused()
    expect(asking.get_by_label("Your password")).to_have_value("")

    asking.get_by_label("Your password").fill(PASSWORD)
    page.keyboard.press("Enter")
    expect(confirm).to_be_visible()
    confirm.get_by_role("button", name="Yes, delete my account").click()
    expect(visitor.heading("Your account is deleted")).to_be_focused()
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    shots.take("account-deleted")

    page.get_by_role("link", name="Back to the start page").click()
    visitor.log_in(email)
    expect(page.get_by_role("form", name="Log in").get_by_role("alert")).to_be_visible()
    visitor.sign_up(email)  # the address is free again
    expect(visitor.heading("New task")).to_be_visible()
