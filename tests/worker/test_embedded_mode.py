"""`pixelfleet up` as a newcomer runs it: real processes, a session over HTTP, restarts."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.api_helpers import image_bytes, noise_png, truncated_jpeg
from tests.harness.cpu import IDLE_CORES, busy_cores_over, wait_until_idle
from tests.harness.embedded import pixelfleet_up
from tests.live_api import balance, ledger, sign_in, submit, wait_final

pytestmark = pytest.mark.heavy


def test_a_user_session_against_pixelfleet_up(tmp_path: Path, database_url: str) -> None:
    env = {"PIXELFLEET_DATABASE_URL": database_url}
    with (
        pixelfleet_up(tmp_path / "data", env=env) as platform,
        httpx.Client(base_url=platform.base_url, timeout=30) as http,
    ):
        headers = sign_in(http, "newcomer@example.com")
        photo = image_bytes("JPEG", (1200, 800))

        webp = submit(
            http,
            headers,
            {"operations": [{"op": "resize", "width": 600}], "output": {"format": "webp"}},
            photo,
        )
        # Follow the first task's progress as server-sent events until it ends.
        events = []
        with http.stream("GET", f"/v1/tasks/{webp['id']}/events", headers=headers) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line.removeprefix("data: ")))
        assert events[-1]["status"] == "succeeded"

        thumb = submit(
            http,
            headers,
            {
                "operations": [{"op": "thumbnail", "width": 128, "height": 128}],
                "output": {"format": "png"},
            },
            photo,
        )
        broken = submit(http, headers, {"operations": [{"op": "grayscale"}]}, truncated_jpeg())
        spent = webp["cost"] + thumb["cost"]

        assert wait_final(http, headers, thumb["id"])["status"] == "succeeded"
        failed = wait_final(http, headers, broken["id"])
        assert failed["status"] == "failed"
        assert balance(http, headers) == 100 - spent

        for task, fmt, size in [(webp, "WEBP", (600, 400)), (thumb, "PNG", (128, 85))]:
            result = http.get(f"/v1/tasks/{task['id']}/result", headers=headers)
            assert result.status_code == 200
            with Image.open(io.BytesIO(result.content)) as image:
                assert (image.format, image.size) == (fmt, size)


def test_queued_tasks_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # No workers: the API and the scheduler only, so the task waits in the queue.
    with (
        pixelfleet_up(data_dir, workers=0) as platform,
        httpx.Client(base_url=platform.base_url, timeout=30) as http,
    ):
        headers = sign_in(http, "patient@example.com")
        task = submit(http, headers, {"operations": [{"op": "grayscale"}]}, image_bytes())
        assert http.get(f"/v1/tasks/{task['id']}", headers=headers).json()["status"] == "queued"
        token = headers

    with (
        pixelfleet_up(data_dir) as platform,
        httpx.Client(base_url=platform.base_url, timeout=30) as http,
    ):
        # The JWT key lives in the data dir, so the token from before the restart still works.
        assert wait_final(http, token, task["id"])["status"] == "succeeded"


def test_a_second_up_on_the_same_data_dir_is_refused_and_sigterm_stops_the_first_cleanly(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    with pixelfleet_up(data_dir, workers=1) as platform:
        second = subprocess.run(
            [sys.executable, "-m", "pixelfleet", "up", "--port", "0", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode != 0
        assert "already running" in second.stderr

        platform.process.send_signal(signal.SIGTERM)
        assert platform.process.wait(45) == 0, platform.log()


def test_a_task_interrupted_by_a_crash_completes_after_the_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    slow = {"operations": [{"op": "rotate", "angle": 15}], "output": {"format": "avif"}}
    with (
        pixelfleet_up(data_dir, workers=1) as platform,
        httpx.Client(base_url=platform.base_url, timeout=30) as http,
    ):
        headers = sign_in(http, "unlucky@example.com")
        task = submit(http, headers, slow, noise_png((1200, 1200)))
        deadline = time.monotonic() + 30
        while http.get(f"/v1/tasks/{task['id']}", headers=headers).json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        platform.crash()

    with (
        pixelfleet_up(data_dir, workers=1) as platform,
        httpx.Client(base_url=platform.base_url, timeout=30) as http,
    ):
        done = wait_final(http, headers, task["id"])
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2
        assert balance(http, headers) == 100 - task["cost"]


# About eight seconds of one core's work (an AVIF encode of noise), so that a stop shows.
SLOW = {"output": {"format": "avif", "quality": 90}}
SLOW_SOURCE = noise_png((2000, 1500))
QUICK = {"operations": [{"op": "grayscale"}]}


def _encoding(http: httpx.Client, headers: dict[str, str], task_id: str) -> None:
    """Waits until the task's pipeline is in its long encode."""
    deadline = time.monotonic() + 60
    while (task := http.get(f"/v1/tasks/{task_id}", headers=headers).json())["stage"] != "encoding":
        assert task["status"] in {"queued", "running"}, task
        assert time.monotonic() < deadline, task
        time.sleep(0.05)


def test_a_task_past_its_time_limit_stops_is_refunded_and_the_worker_goes_on(
    tmp_path: Path,
) -> None:
    limit = {"PIXELFLEET_TASK_SOFT_TIME_LIMIT_SECONDS": "1"}
    with (
        pixelfleet_up(tmp_path / "data", env=limit, workers=1) as platform,
        httpx.Client(base_url=platform.base_url, timeout=30) as http,
    ):
        headers = sign_in(http, "patience@example.com")
        slow = submit(http, headers, SLOW, SLOW_SOURCE)

        failed = wait_final(http, headers, slow["id"])
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "time-limit"
        # The run was ended with its process, not left going in the background.
        wait_until_idle(platform.process.pid, within=2.0)
        assert balance(http, headers) == 100
        assert [entry["kind"] for entry in ledger(http, headers)].count("task_refund") == 1

        quick = submit(http, headers, QUICK, image_bytes())
        assert wait_final(http, headers, quick["id"])["status"] == "succeeded"


def test_cancelling_a_running_task_stops_its_work_at_once(tmp_path: Path) -> None:
    # A worker that looks by itself only every hour: the cancel has to tell it.
    hourly = {"PIXELFLEET_WORKER_POLL_SECONDS": "3600"}
    with (
        pixelfleet_up(tmp_path / "data", env=hourly, workers=1) as platform,
        httpx.Client(base_url=platform.base_url, timeout=30) as http,
    ):
        headers = sign_in(http, "second-thoughts@example.com")
        slow = submit(http, headers, SLOW, SLOW_SOURCE)
        _encoding(http, headers, slow["id"])
        # The work shows while it runs.
        assert busy_cores_over(platform.process.pid, 0.5) > IDLE_CORES

        cancelled = http.delete(f"/v1/tasks/{slow['id']}", headers=headers)
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        wait_until_idle(platform.process.pid, within=2.0)

        task = http.get(f"/v1/tasks/{slow['id']}", headers=headers).json()
        assert (task["status"], task["outputs"]) == ("cancelled", [])
        # A task cancelled while running is not refunded.
        assert balance(http, headers) == 100 - slow["cost"]
        quick = submit(http, headers, QUICK, image_bytes())
        assert wait_final(http, headers, quick["id"])["status"] == "succeeded"
