"""What the benchmarks share: their photo-like test images, an account that submits tasks to a
served PixelFleet, following tasks to their end, and the CPU a process tree spent.

Not a benchmark itself: the scripts beside it import it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from PIL import Image, ImageDraw, ImageFilter

if TYPE_CHECKING:
    from pixelfleet.settings import Settings

PASSWORD = "benchmark password"
EMAIL = "bench@example.com"

UNBOUNDED_ACCOUNT = {
    "PIXELFLEET_SIGNUP_CREDITS": "1000000",  # the most the settings allow
    "PIXELFLEET_MAX_ACTIVE_TASKS_PER_USER": "1000000",  # a whole run is queued at once
}
"""Settings of a served PixelFleet under which a benchmark's account never runs short."""

VARIANT_WIDTHS = ((150, "webp"), (640, "jpeg"), (1280, "webp"), (2048, "jpeg"))
"""The four variants of one image (width, format) that the variant cases make..."""
VARIANTS_PIPELINE = {
    "variants": [
        {
            "name": f"w{width}",
            "operations": [{"op": "resize", "width": width}],
            "output": {"format": fmt, "quality": 80},
        }
        for width, fmt in VARIANT_WIDTHS
    ]
}
"""...as one task's pipeline."""


def photo_like(width: int, height: int, seed: int, grain: float = 0.08) -> Image.Image:
    """Smooth light, hard edges and sensor-like noise: what a camera photo looks like to a codec.
    More `grain` makes a busier picture and a bigger file."""
    base = Image.linear_gradient("L").resize((width, height))
    sky = Image.merge(
        "RGB", (base, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT), base.rotate(180))
    )
    draw = ImageDraw.Draw(sky)
    for i in range(40):
        x = (seed * 7919 + i * 104729) % width
        y = (seed * 15485863 + i * 32452843) % height
        r = 40 + (i * 37) % (width // 8)
        colour = ((i * 53) % 256, (i * 97) % 256, (i * 151) % 256)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    noise = Image.effect_noise((width, height), 18).convert("RGB")
    return Image.blend(sky.filter(ImageFilter.GaussianBlur(2)), noise, grain)


def photo_jpeg(
    width: int, height: int, seed: int, grain: float = 0.08, quality: int = 90
) -> bytes:
    """`photo_like` as a JPEG file's bytes."""
    out = io.BytesIO()
    photo_like(width, height, seed, grain).save(out, "JPEG", quality=quality)
    return out.getvalue()


def sign_up(http: httpx.Client, email: str = EMAIL) -> dict[str, str]:
    """Registers an account (the benchmark's, unless `email` names another; or finds it there)
    and logs in: its headers."""
    http.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
    token = http.post("/v1/auth/token", data={"username": email, "password": PASSWORD}).json()[
        "access_token"
    ]
    return {"Authorization": f"Bearer {token}"}


def submit(http: httpx.Client, headers: dict[str, str], image: bytes, pipeline: object) -> str:
    """Submits `image` (a JPEG) through `pipeline`: the new task's id."""
    response = http.post(
        "/v1/tasks",
        headers=headers,
        files={"file": ("photo.jpg", image, "image/jpeg")},
        data={"pipeline": json.dumps(pipeline)},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def final_status(http: httpx.Client, headers: dict[str, str], task_id: str) -> str:
    """Follows the task's server-sent event stream (as the console does) to its `done` event:
    the task's final status."""
    done = False
    with http.stream("GET", f"/v1/tasks/{task_id}/events", headers=headers) as stream:
        for line in stream.iter_lines():
            if line == "event: done":
                done = True
            elif done and line.startswith("data: "):
                return str(json.loads(line[len("data: ") :])["status"])
    raise SystemExit(f"the event stream of task {task_id} ended without `done`")


def finish_times(
    http: httpx.Client, headers: dict[str, str], ids: set[str], within: float = 900
) -> dict[str, datetime]:
    """Reads the task list every 0.2 s until every task of `ids` has succeeded: when each
    finished, by the server's clock (so the reading interval does not count)."""
    finished: dict[str, datetime] = {}
    deadline = time.monotonic() + within
    while not ids <= finished.keys():
        if time.monotonic() > deadline:
            raise SystemExit("the tasks did not finish in time")
        time.sleep(0.2)
        items = http.get("/v1/tasks", headers=headers, params={"limit": 100}).json()["items"]
        for item in items:
            if item["id"] in ids and item["status"] in ("failed", "cancelled"):
                raise SystemExit(f"a task ended {item['status']}")
            if item["id"] in ids and item["status"] == "succeeded":
                finished[item["id"]] = datetime.fromisoformat(item["finished_at"])
    return finished


def cpu_seconds_by_root(roots: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) of each named process and all its descendants (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        parent[int(entry)] = int(fields[1])
        used[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    by_root = dict.fromkeys(roots, 0.0)
    names = {pid: name for name, pid in roots.items()}
    for pid, seconds in used.items():
        ancestor = pid
        while ancestor not in names and ancestor in parent and ancestor > 1:
            ancestor = parent[ancestor]
        if ancestor in names:
            by_root[names[ancestor]] += seconds
    return by_root


def start_api(settings: Settings, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`pixelfleet api` on a free port with `settings` (its output in `log`), once it answers
    `/readyz`: the process and its base URL."""
    from tests.harness.celery import settings_env
    from tests.harness.ports import free_port

    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pixelfleet", "api", "--port", str(port)],
            env=settings_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/readyz").status_code == 200:
                return process, base_url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the API did not start:\n{log.read_text()}")
