"""What a visitor does on the console, in the words of its labels and buttons: the tests
find everything as a person (or a screen reader) would, by role and accessible name."""

from __future__ import annotations

import base64
import random
import re
import secrets
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.imaging.sample_images import photo

PASSWORD = "violet kettle harbour 42"


def new_email() -> str:
    return f"visitor-{secrets.token_hex(6)}@example.com"


@dataclass(frozen=True)
class Photo:
    name: str
    data: bytes
    width: int
    height: int
    content_type: str = "image/jpeg"


def unseen_photo(rng: random.Random) -> Photo:
    """A photo drawn for this run only: its size, its scene and its noise come from `rng`."""
    width, height = rng.randint(900, 2400), rng.randint(700, 1800)
    buffer = BytesIO()
    scene = photo(width, height, seed=rng.randrange(2**32))
    scene.save(buffer, "JPEG", quality=rng.randint(70, 95))
    return Photo(f"photo-{rng.randrange(10**6)}.jpg", buffer.getvalue(), width, height)


_DROP = """([data, name, type]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type }));
  return transfer;
}"""


@dataclass
class Console:
    page: Page
    base_url: str

    def open(self) -> None:
        self.page.goto(f"{self.base_url}/")

    def sign_up(self, email: str, password: str = PASSWORD) -> None:
        form = self.page.get_by_role("form", name="Create an account")
        form.get_by_label("Email").fill(email)
        form.get_by_label("Password").fill(password)
        form.get_by_role("button", name="Sign up").click()

    def new_account(self) -> str:
        """Opens the console and signs up a new account; returns its email once the console
        shows the new-task page."""
        email = new_email()
        self.open()
        self.sign_up(email)
        expect(self.heading("New task")).to_be_visible()
        return email

    def log_in(self, email: str, password: str = PASSWORD) -> None:
        form = self.page.get_by_role("form", name="Log in")
        form.get_by_label("Email").fill(email)
        form.get_by_label("Password").fill(password)
        form.get_by_role("button", name="Log in").click()

    def heading(self, name: str) -> Locator:
        return self.page.get_by_role("heading", name=name, level=1)

    def go_to(self, section: str) -> None:
        self.page.get_by_role("navigation", name="Main").get_by_role("link", name=section).click()

    @property
    def drop_zone(self) -> Locator:
        return self.page.locator(".dropzone")

    def drop(self, image: Photo) -> None:
        """Drags the file onto the drop zone, as from a file manager."""
        payload = [base64.b64encode(image.data).decode(), image.name, image.content_type]
        transfer = self.page.evaluate_handle(_DROP, payload)
        for event in ("dragenter", "dragover", "drop"):
            self.drop_zone.dispatch_event(event, {"dataTransfer": transfer})

    def choose(self, image: Photo) -> None:
        """Picks the file with the file chooser."""
        self.page.get_by_label("Choose an image").set_input_files(
            {"name": image.name, "mimeType": image.content_type, "buffer": image.data}
        )

    def add_step(self, operation: str) -> Locator:
        """Adds an operation and returns its step's fieldset."""
        self.page.get_by_label("Operation", exact=True).select_option(operation)
        self.page.get_by_role("button", name="Add step").click()
        step = self.page.locator(f"fieldset.step[data-op='{operation}']").last
        expect(step).to_be_visible()
        return step

    def output_format(self, name: str) -> None:
        self.page.get_by_label("Format", exact=True).select_option(name)

    def submit(self) -> None:
        self.page.get_by_role("button", name="Process image").click()

    def submit_task(self) -> dict[str, Any]:
        """Submits, and returns the task the API answered the form's POST with."""
        with self.page.expect_response(
            lambda answer: answer.url.endswith("/v1/tasks") and answer.request.method == "POST"
        ) as submitted:
            self.submit()
        task: dict[str, Any] = submitted.value.json()
        return task

    @property
    def alert(self) -> Locator:
        return self.page.get_by_role("alert").filter(has_text=re.compile(r"\S"))

    @property
    def progress_text(self) -> Locator:
        return self.page.locator("#task-progress-text")
