"""Past tasks (listed, filtered, cancelled) and credits (the ledger, a pack bought through
Checkout), on a platform whose worker leaves every task queued."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import Page, Route, expect

from tests.console.conftest import IDLE_MAX_ACTIVE_TASKS, IDLE_SIGNUP_CREDITS, Shots
from tests.console.console_page import Console, unseen_photo
from tests.harness.embedded import RunningPlatform
from tests.harness.razorpay import FakeRazorpay

STANDIN = Path(__file__).with_name("checkout_standin.js").read_text()


def _submit_grayscale(visitor: Console, rng: random.Random) -> str:
    """Submits a one-step task and returns its short id (as the console shows it)."""
    visitor.page.get_by_role("navigation", name="Main").get_by_role("link", name="New task").click()
    visitor.choose(unseen_photo(rng))
    visitor.add_step("grayscale")
    visitor.submit()
    expect(visitor.page.get_by_text("Queued", exact=True)).to_be_visible()
    heading = visitor.heading(re.compile(r"^Task [0-9a-f]{8}$"))
    expect(heading).to_be_visible()
    return heading.inner_text().removeprefix("Task ")


def test_tasks_are_listed_filtered_and_cancelled_with_a_refund(
    page: Page, idle_console: RunningPlatform, shots: Shots
) -> None:
    rng = random.Random()
    visitor = Console(page, idle_console.base_url)
    visitor.new_account()
    submitted = [_submit_grayscale(visitor, rng) for _ in range(3)]  # 2 credits each
    balance = IDLE_SIGNUP_CREDITS - 3 * 2
    expect(page.get_by_role("link", name=f"{balance} credits")).to_be_visible()

    visitor.go_to("Tasks")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(3)
    assert [row.get_attribute("data-task")[:8] for row in rows.all()] == submitted[::-1]
    shots.take("three-queued")

    page.get_by_role("button", name=f"Cancel task {submitted[0]}").click()
    expect(visitor.alert).to_have_text(f"Task {submitted[0]} was cancelled.")
    expect(rows.filter(has_text=submitted[0])).to_contain_text("Cancelled")
    expect(page.get_by_role("link", name=f"{balance + 2} credits")).to_be_visible()

    status = page.get_by_label("Status")
    status.select_option("cancelled")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(submitted[0])
    status.select_option("queued")
    expect(rows).to_have_count(2)
    status.select_option("succeeded")
    expect(page.get_by_text("No tasks here yet.")).to_be_visible()
    shots.take("filtered")

    status.select_option("queued")
    page.get_by_role("link", name=submitted[1]).click()
    expect(visitor.heading(f"Task {submitted[1]}")).to_be_visible()
    page.get_by_role("button", name="Cancel task", exact=True).click()
    expect(page.get_by_text("Cancelled", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Cancel task", exact=True)).to_be_hidden()
    expect(page.get_by_role("link", name=f"{balance + 4} credits")).to_be_visible()


def test_a_task_past_the_active_task_quota_is_refused_with_when_to_try_again(
    page: Page, idle_console: RunningPlatform, shots: Shots
) -> None:
    rng = random.Random()
    visitor = Console(page, idle_console.base_url)
    visitor.new_account()
    for _ in range(IDLE_MAX_ACTIVE_TASKS):
        _submit_grayscale(visitor, rng)
    balance = IDLE_SIGNUP_CREDITS - IDLE_MAX_ACTIVE_TASKS * 2

    visitor.page.get_by_role("navigation", name="Main").get_by_role("link", name="New task").click()
    visitor.choose(unseen_photo(rng))
    visitor.add_step("grayscale")
    visitor.submit()
    expect(visitor.alert).to_contain_text(
        f"This account has {IDLE_MAX_ACTIVE_TASKS} tasks queued or running; "
        f"max_active_tasks_per_user is {IDLE_MAX_ACTIVE_TASKS}"
    )
    expect(visitor.alert).to_contain_text(re.compile(r"Try again in \d+ s\."))
    expect(visitor.heading("New task")).to_be_visible()  # the form stays, nothing was queued
    expect(page.get_by_role("link", name=f"{balance} credits")).to_be_visible()
    shots.take("refused")


def test_a_pack_bought_through_checkout_adds_its_credits(
    page: Page, idle_console: RunningPlatform, razorpay: FakeRazorpay, shots: Shots
) -> None:
    paid_orders: list[str] = []

    def checkout_script(route: Route) -> None:
        route.fulfill(status=200, content_type="text/javascript", body=STANDIN)

    def pay(route: Route) -> None:
        query = parse_qs(urlparse(route.request.url).query)
        assert query["key"] == [razorpay.key_id]
        order_id = query["order_id"][0]
        payment = razorpay.pay(order_id)
        paid_orders.append(order_id)
        answer = {
            "razorpay_order_id": order_id,
            "razorpay_payment_id": payment["id"],
            "razorpay_signature": razorpay.checkout_signature(order_id, payment["id"]),
        }
        route.fulfill(status=200, content_type="application/json", body=json.dumps(answer))

    page.route("https://checkout.razorpay.com/v1/checkout.js", checkout_script)
    page.route("https://checkout.razorpay.com/stand-in/pay?*", pay)
    visitor = Console(page, idle_console.base_url)
    visitor.new_account()
    visitor.go_to("Credits")
    expect(page.locator(".balance")).to_have_text(f"{IDLE_SIGNUP_CREDITS} credits")
    shots.take("packs")

    page.get_by_role("button", name=re.compile(r"^Buy 500 credits for")).click()
    checkout = page.get_by_role("dialog", name="Razorpay Checkout")
    expect(checkout).to_be_visible()
    checkout.get_by_role("button", name=re.compile("^Pay")).click()

    expect(visitor.alert).to_have_text("Payment received: 500 credits added.")
    expect(page.locator(".balance")).to_have_text(f"{IDLE_SIGNUP_CREDITS + 500} credits")
    expect(page.get_by_role("link", name=f"{IDLE_SIGNUP_CREDITS + 500} credits")).to_be_visible()
    expect(page.locator("tbody tr").first).to_contain_text("Purchase")
    assert len(paid_orders) == 1
    assert razorpay.order(paid_orders[0])["status"] == "paid"
    shots.take("paid")


def test_closing_checkout_charges_nothing(
    page: Page, idle_console: RunningPlatform, shots: Shots
) -> None:
    page.route(
        "https://checkout.razorpay.com/v1/checkout.js",
        lambda route: route.fulfill(status=200, content_type="text/javascript", body=STANDIN),
    )
    visitor = Console(page, idle_console.base_url)
    visitor.new_account()
    visitor.go_to("Credits")
    page.get_by_role("button", name=re.compile(r"^Buy 500 credits for")).click()
    page.get_by_role("dialog", name="Razorpay Checkout").get_by_role("button", name="Close").click()

    expect(visitor.alert).to_have_text(
        "The payment was not completed. If you were charged, the credits arrive shortly."
    )
    expect(page.locator(".balance")).to_have_text(f"{IDLE_SIGNUP_CREDITS} credits")


def test_checkout_that_cannot_load_is_explained(page: Page, idle_console: RunningPlatform) -> None:
    page.route("https://checkout.razorpay.com/v1/checkout.js", lambda route: route.abort())
    visitor = Console(page, idle_console.base_url)
    visitor.new_account()
    visitor.go_to("Credits")
    page.get_by_role("button", name=re.compile(r"^Buy 500 credits for")).click()
    expect(visitor.alert).to_have_text(
        "Razorpay Checkout could not be loaded. Check your connection and try again."
    )
