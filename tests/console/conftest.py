"""The console in a real headless Chromium, against real `pixelfleet up` processes.

Each test gets a fresh browser context (no cookies, no storage) and may save screenshots
with `shots.take(name)`; they land in `test-artifacts/console/<test>/` (or under
`PIXELFLEET_TEST_ARTIFACTS`), and a last one is taken when the test ends, passed or failed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.harness.chromium import CHROMIUM_ARGS, chromium_executable
from tests.harness.embedded import RunningPlatform, pixelfleet_up
from tests.harness.razorpay import FakeRazorpay

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("PIXELFLEET_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "console"

# Enough for one resize-to-WebP task (1 + 1 + 1), so a second one is refused with a 402.
SIGNUP_CREDITS = 3


# Module-scoped, not session-scoped: while Playwright's synchronous API is started, its event
# loop counts as running in this thread, and the asynchronous tests of other folders could not
# run their own.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    """The platform as the README's first command runs it (SQLite, local files, local
    workers), with no payment provider configured."""
    data = tmp_path_factory.mktemp("console") / "data"
    env = {
        "PIXELFLEET_SIGNUP_CREDITS": str(SIGNUP_CREDITS),
        # Image URLs name image hosts on loopback (tests/console/test_image_sources.py).
        "PIXELFLEET_SOURCE_ALLOW_PRIVATE_URLS": "true",
    }
    with pixelfleet_up(data, env=env, workers=1) as running:
        yield running


@pytest.fixture(scope="session")
def razorpay() -> Iterator[FakeRazorpay]:
    with FakeRazorpay() as fake:
        yield fake


# Enough for several tasks and a refund to show.
IDLE_SIGNUP_CREDITS = 20
# Tasks an account may have queued there (PIXELFLEET_MAX_ACTIVE_TASKS_PER_USER).
IDLE_MAX_ACTIVE_TASKS = 4


@pytest.fixture(scope="session")
def idle_console(
    tmp_path_factory: pytest.TempPathFactory, razorpay: FakeRazorpay
) -> Iterator[RunningPlatform]:
    """The platform with Razorpay configured (the local server that signs like Razorpay)
    and no workers: every task submitted here stays queued, to be listed, filtered and
    cancelled."""
    data = tmp_path_factory.mktemp("idle-console") / "data"
    env = {
        "PIXELFLEET_SIGNUP_CREDITS": str(IDLE_SIGNUP_CREDITS),
        "PIXELFLEET_MAX_ACTIVE_TASKS_PER_USER": str(IDLE_MAX_ACTIVE_TASKS),
        "PIXELFLEET_RAZORPAY_KEY_ID": razorpay.key_id,
        "PIXELFLEET_RAZORPAY_KEY_SECRET": razorpay.key_secret,
        "PIXELFLEET_RAZORPAY_WEBHOOK_SECRET": razorpay.webhook_secret,
        "PIXELFLEET_RAZORPAY_BASE_URL": razorpay.base_url,
    }
    with pixelfleet_up(data, env=env, workers=0) as running:
        yield running


@dataclass
class Shots:
    """Screenshots of one test, numbered in the order they were taken."""

    page: Page
    directory: Path
    taken: list[Path] = field(default_factory=list)

    def take(self, name: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{len(self.taken) + 1:02d}-{name}.png"
        self.page.screenshot(path=path, full_page=True)
        self.taken.append(path)
        return path


@dataclass
class PageProblems:
    """What went wrong inside the page: uncaught exceptions fail the test."""

    errors: list[str] = field(default_factory=list)


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    opened = context.new_page()
    problems = PageProblems()
    opened.on("pageerror", lambda error: problems.errors.append(str(error)))
    request.node.page_problems = problems
    yield opened
    context.close()
    assert problems.errors == [], f"the page threw: {problems.errors}"


@pytest.fixture
def shots(page: Page, request: pytest.FixtureRequest) -> Iterator[Shots]:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    taken = Shots(page, ARTIFACTS / name)
    yield taken
    if not page.is_closed():
        taken.take("last")
