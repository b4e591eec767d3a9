"""The usage chart beside the balance: a bar for each of the last 30 days, drawn from
`GET /v1/usage`, whose heights are the credits spent each day, and whose label and hidden list
tell the same numbers to a screen reader."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

from playwright.sync_api import Page, expect

from tests.console.conftest import Shots
from tests.console.console_page import Console, unseen_photo
from tests.harness.embedded import RunningPlatform

GRAYSCALE_PRICE = 2  # one credit a task, one for the step, JPEG out


def test_the_chart_has_todays_spend_as_its_one_bar(
    page: Page, console: RunningPlatform, shots: Shots
) -> None:
    visitor = Console(page, console.base_url)
    visitor.new_account()
    visitor.choose(unseen_photo(random.Random()))
    visitor.add_step("grayscale")
    visitor.submit()
    expect(visitor.progress_text).to_have_text("100 %", timeout=60_000)

    visitor.go_to("Credits")
    chart = page.get_by_role("img", name=re.compile("^Credits spent per day"))
    expect(chart).to_have_attribute("aria-label", re.compile(f": {GRAYSCALE_PRICE} in all,"))
    shots.take("usage-chart")

    bars = chart.locator("rect")
    expect(bars).to_have_count(30)
    today = datetime.now(UTC).date().isoformat()
    spent = {bar.get_attribute("data-day"): bar.get_attribute("data-credits") for bar in bars.all()}
    assert spent[today] == str(GRAYSCALE_PRICE)
    assert {day for day, credits in spent.items() if credits != "0"} == {today}
    today_bar = chart.locator(f"rect[data-day='{today}']").bounding_box()
    chart_box = chart.bounding_box()
    assert today_bar is not None
    assert chart_box is not None
    assert today_bar["height"] > 0.9 * chart_box["height"]  # the busiest day fills the chart
    heights = [float(bar.get_attribute("height") or 0) for bar in bars.all()]
    assert sorted(heights)[:-1] == [0.0] * 29
    expect(page.locator(".usage li")).to_have_text(
        [re.compile(f": {GRAYSCALE_PRICE} credits spent$")]
    )
