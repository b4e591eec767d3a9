"""docs/api.md as its readers use it: every `sh` block runs, in order, as one bash script
against a real `pixelfleet up`, its webhook-signature check accepts exactly what PixelFleet
signs, and its example of a generated Python client runs against the same server."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw

from pixelfleet.settings import Settings
from pixelfleet.webhooks.signing import signature_header, user_signing_secret
from tests.api_helpers import image_bytes
from tests.harness.embedded import RunningPlatform, pixelfleet_up
from tests.live_api import sign_in, wait_final
from tests.webhooks.receiver import Receiver

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
FENCE = re.compile(r"^```(?P<language>\w*)\n(?P<code>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
PHOTO_SIZE = (1600, 1200)

Verifier = Callable[..., bool]


def blocks_of(language: str) -> list[str]:
    """The code of the guide's fenced blocks marked `language`, in the order they appear."""
    text = GUIDE.read_text(encoding="utf-8")
    return [m["code"] for m in FENCE.finditer(text) if m["language"] == language]


def python_block(defining: str) -> str:
    """The guide's one `python` block that contains `defining`."""
    (snippet,) = [code for code in blocks_of("python") if defining in code]
    return snippet


def the_guides_signature_check() -> Verifier:
    """`verify_pixelfleet_signature` as the guide defines it."""
    snippet = python_block("def verify_pixelfleet_signature(")
    namespace: dict[str, Any] = {}
    exec(compile(snippet, str(GUIDE), "exec"), namespace)
    verifier: Verifier = namespace["verify_pixelfleet_signature"]
    return verifier


def write_photo(path: Path) -> None:
    """A JPEG photo of sorts: a gradient sky with shapes, so that every operation has work."""
    width, height = PHOTO_SIZE
    photo = Image.new("RGB", PHOTO_SIZE)
    draw = ImageDraw.Draw(photo)
    for y in range(height):
        draw.line([(0, y), (width, y)], fill=(40 + y // 8, 120 + y // 12, 230 - y // 10))
    for i in range(12):
        box = (100 + i * 110, 500 + (i % 3) * 150, 220 + i * 110, 700 + (i % 3) * 150)
        draw.ellipse(box, fill=(200 - i * 10, 60 + i * 12, 40 + i * 15))
    photo.save(path, "JPEG", quality=90)


def image_at(path: Path) -> tuple[str | None, tuple[int, int]]:
    with Image.open(path) as image:
        image.load()  # the whole file decodes, not only its header
        return image.format, image.size


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    """One `pixelfleet up` as the Quick start runs it (on SQLite), with one worker. Private
    webhook targets are allowed so that a receiver on a loopback port can get a delivery; the
    guide's script never sends a callback_url."""
    env = {"PIXELFLEET_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}
    data_dir = tmp_path_factory.mktemp("guide") / "data"
    with pixelfleet_up(data_dir, env=env, workers=1) as running:
        yield running


def test_the_shell_examples_walk_through_a_whole_task_in_order() -> None:
    script = "\n".join(blocks_of("sh"))
    steps = [
        "/v1/auth/register",
        "/v1/auth/token",
        "-F file=@photo.jpg",
        '-N "$API/v1/tasks/$ID/events"',
        '"$API/v1/tasks/$ID"',
        '"$API/v1/tasks/$ID/result"',
        '"$API/v1/tasks?status=succeeded',
        '-X DELETE "$API/v1/tasks/$BIG"',
    ]
    positions = [script.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p == -1]
    assert positions == sorted(positions)


def test_the_guide_runs_as_written_against_pixelfleet_up(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    write_photo(tmp_path / "photo.jpg")
    script = tmp_path / "guide.sh"
    script.write_text("\n".join(blocks_of("sh")), encoding="utf-8")
    env = {
        **os.environ,
        "API": platform.base_url,
        # `python3` is the one PixelFleet runs on, whatever else is on the PATH.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    run = subprocess.run(
        ["bash", "-euo", "pipefail", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert run.returncode == 0, (
        f"the guide's script failed ({run.returncode})\n--- stdout\n{run.stdout}\n"
        f"--- stderr\n{run.stderr}\n--- server log (end)\n{platform.log()[-4000:]}"
    )
    output = run.stdout.splitlines()
    assert "event: done" in output  # the events stream ran to the task's end
    assert "succeeded" in output  # the polling loop's last word
    assert "cancelled" in output  # the heavier task was cancelled before it finished
    # `format: auto` answered each Accept of the loop with its own format.
    at = output.index("image/avif")
    assert output[at : at + 3] == ["image/avif", "image/webp", "image/jpeg"]
    # The derivative URL was made on its first read, for an AVIF reader, as immutable.
    assert "content-type: image/avif" in output
    assert "cache-control: public, max-age=31536000, immutable" in output
    assert image_at(tmp_path / "card.avif")[0] == "AVIF"
    # The placeholder example printed a BlurHash and a dominant colour.
    [placeholder] = [line for line in output if line.startswith("placeholder: ")]
    assert re.fullmatch(r"placeholder: \S{28} #[0-9a-f]{6}", placeholder), placeholder
    assert image_at(tmp_path / "photo.webp") == ("WEBP", (800, 600))
    assert image_at(tmp_path / "thumb.webp") == ("WEBP", (150, 113))
    assert image_at(tmp_path / "large.jpg") == ("JPEG", (1200, 900))


def test_the_signature_check_accepts_what_pixelfleet_signs_and_nothing_else(
    tmp_path: Path,
) -> None:
    verify = the_guides_signature_check()
    settings = Settings(data_dir=tmp_path, jwt_secret="guide-" + "k" * 40)
    secret = user_signing_secret(settings, uuid.uuid4())
    event = {"id": str(uuid.uuid4()), "type": "task.succeeded", "data": {"task": {"cost": 3}}}
    body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    header = signature_header(secret, body)

    assert verify(secret, header, body)
    assert not verify(secret, header, body.replace(b"3", b"4"))
    assert not verify(user_signing_secret(settings, uuid.uuid4()), header, body)
    assert not verify(secret, signature_header(secret, body, int(time.time()) - 301), body)
    assert not verify(secret, "", body)
    # While a secret is being rotated a header may carry several v1 values: any one may match.
    stamp, signature = header.split(",")
    assert verify(secret, f"{stamp},v1={'0' * 64},{signature}", body)


def test_the_signature_check_accepts_a_real_delivery(platform: RunningPlatform) -> None:
    verify = the_guides_signature_check()
    receiver = Receiver()
    receiver.start()
    try:
        with httpx.Client(base_url=platform.base_url, timeout=30) as http:
            headers = sign_in(http, "receiver@example.com")
            secret = http.get("/v1/me/webhook-secret", headers=headers).json()["secret"]
            submitted = http.post(
                "/v1/tasks",
                headers=headers,
                files={"file": ("photo.jpg", image_bytes("JPEG", (320, 240)))},
                data={"callback_url": f"{receiver.url}/hooks/pixelfleet"},
            )
            assert submitted.status_code == 202, submitted.text
            task_id = submitted.json()["id"]
            assert wait_final(http, headers, task_id)["status"] == "succeeded"
            deadline = time.monotonic() + 30
            while not receiver.requests and time.monotonic() < deadline:
                time.sleep(0.1)
            deliveries = http.get(f"/v1/tasks/{task_id}/deliveries", headers=headers).json()
    finally:
        receiver.stop()

    (request,) = receiver.requests
    assert request.headers["pixelfleet-event"] == "task.succeeded"
    assert request.headers["pixelfleet-delivery"] == deliveries["items"][0]["id"]
    assert verify(secret, request.headers["pixelfleet-signature"], request.body)
    assert not verify(secret, request.headers["pixelfleet-signature"], request.body + b" ")


def test_the_generated_client_example_runs_as_written(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    """The guide's one-line generation (the generator installed with the project, rather than
    fetched by `uvx`), then its example, as a reader runs them."""
    (line,) = [code for code in blocks_of("bash") if "openapi-python-client generate" in code]
    command = shlex.split(line.replace("http://127.0.0.1:8000", platform.base_url))
    assert command[:2] == ["uvx", "openapi-python-client"]
    # No post-hooks: they would only format the generated code with ruff.
    (tmp_path / "config.json").write_text(json.dumps({"post_hooks": []}))
    generator = Path(sys.executable).with_name("openapi-python-client")
    generate = [str(generator), *command[2:], "--config", "config.json"]
    generated = subprocess.run(
        generate, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    write_photo(tmp_path / "photo.jpg")
    (tmp_path / "client_example.py").write_text(python_block("from pixelfleet_client import"))
    run = subprocess.run(
        [sys.executable, "client_example.py"],
        cwd=tmp_path,
        env={**os.environ, "API": platform.base_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{platform.log()[-4000:]}"
    assert run.stdout.splitlines() == ["succeeded 800"]
    assert image_at(tmp_path / "client-photo.webp") == ("WEBP", (800, 600))
