"""How long a user waits for a small image, against the time the image work itself takes.

Baseline: `run_pipeline` in this process on a 640x480 JPEG (a 256 px thumbnail), one run after
another, image already in memory. Ours: against a served `pixelfleet up` (two workers), one
client at a time: POST /v1/tasks with the same image, then the task's server-sent event stream
(GET /v1/tasks/{id}/events, as the console follows a task) until its `done` event; timed by the
client from the start of the POST to the `done` line.

Also, on the same server: what a status read costs against `/healthz` (client-side median of
each, one after another on one keep-alive connection), and the CPU the whole `pixelfleet up`
process tree spends while nothing is submitted (from /proc).

    uv run --locked --group test python bench/latency.py [--tasks N] [--quick]

`--quick` times 3 tasks and 20 reads, with a 1 s idle window: it checks that the benchmark runs.

Prints a table, then `ratio NAME VALUE` lines: `sse_completion_vs_pipeline_p50` and `_p95`
(ours / the bare pipeline's time: 1.0 would mean the platform adds nothing), `status_vs_healthz`
(a status read's median / `/healthz`'s), `idle_cpu_of_one_core` (CPU seconds of the idle tree
per wall second).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from imaging import photo_like  # noqa: E402  (bench/imaging.py, beside this file)
from throughput import _cpu_seconds_by_root  # noqa: E402

from pixelfleet.imaging.limits import ImageLimits  # noqa: E402
from pixelfleet.imaging.runner import run_pipeline  # noqa: E402
from pixelfleet.imaging.spec import parse_pipeline  # noqa: E402
from tests.harness.embedded import pixelfleet_up  # noqa: E402

PIPELINE = {
    "operations": [{"op": "thumbnail", "width": 256, "height": 256}],
    "output": {"format": "jpeg", "quality": 85},
}
PASSWORD = "benchmark password"


def small_photo() -> bytes:
    out = io.BytesIO()
    photo_like(640, 480, 3).save(out, "JPEG", quality=90)
    return out.getvalue()


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def bare_pipeline(image: bytes, runs: int) -> list[float]:
    pipeline = parse_pipeline(json.dumps(PIPELINE), ImageLimits())
    for _ in range(3):
        run_pipeline(image, pipeline, ImageLimits())  # warm the codecs
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run_pipeline(image, pipeline, ImageLimits())
        samples.append(time.perf_counter() - started)
    return samples


def until_done(http: httpx.Client, headers: dict[str, str], image: bytes) -> tuple[str, float]:
    """Submits the image and follows the task's event stream to its end: (status, seconds)."""
    started = time.perf_counter()
    response = http.post(
        "/v1/tasks",
        headers=headers,
        files={"file": ("small.jpg", image, "image/jpeg")},
        data={"pipeline": json.dumps(PIPELINE)},
    )
    assert response.status_code == 202, response.text
    task_id = response.json()["id"]
    done = False
    with http.stream("GET", f"/v1/tasks/{task_id}/events", headers=headers) as stream:
        for line in stream.iter_lines():
            if line == "event: done":
                done = True
            elif done and line.startswith("data: "):
                return json.loads(line[len("data: ") :])["status"], time.perf_counter() - started
    raise SystemExit(f"the event stream of task {task_id} ended without `done`")


def median_seconds(http: httpx.Client, path: str, headers: dict[str, str], reads: int) -> float:
    samples = []
    for _ in range(reads):
        started = time.perf_counter()
        response = http.get(path, headers=headers)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="3 tasks: a check that it runs")
    args = parser.parse_args()
    tasks = 3 if args.quick else args.tasks
    reads = 20 if args.quick else 300
    idle_seconds = 1.0 if args.quick else 5.0
    image = small_photo()

    pipeline = bare_pipeline(image, max(tasks, 20))
    with (
        tempfile.TemporaryDirectory() as tmp,
        pixelfleet_up(
            Path(tmp) / "data", env={"PIXELFLEET_MAX_ACTIVE_TASKS_PER_USER": "1000000"}
        ) as platform,
        httpx.Client(base_url=platform.base_url, timeout=60) as http,
    ):
        http.post("/v1/auth/register", json={"email": "bench@example.com", "password": PASSWORD})
        token = http.post(
            "/v1/auth/token", data={"username": "bench@example.com", "password": PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(2):
            until_done(http, headers, image)  # warm the workers and their pipeline children
        waits = []
        for _ in range(tasks):
            status, seconds = until_done(http, headers, image)
            if status != "succeeded":
                raise SystemExit(f"a task ended {status}")
            waits.append(seconds)
        task_id = http.get("/v1/tasks", headers=headers, params={"limit": 1}).json()["items"][0][
            "id"
        ]
        status_read = median_seconds(http, f"/v1/tasks/{task_id}", headers, reads)
        healthz = median_seconds(http, "/healthz", {}, reads)

        tree = {"pixelfleet up": platform.process.pid}
        before = _cpu_seconds_by_root(tree)["pixelfleet up"]
        time.sleep(idle_seconds)  # the measurement: what the tree spends while nothing happens
        idle = (_cpu_seconds_by_root(tree)["pixelfleet up"] - before) / idle_seconds

    p50, p95 = percentile(waits, 0.5), percentile(waits, 0.95)
    base50, base95 = percentile(pipeline, 0.5), percentile(pipeline, 0.95)
    print(f"640x480 JPEG ({len(image) / 1e3:.0f} kB) -> 256 px JPEG, {os.cpu_count()} cores")
    print(f"{'path':52} {'runs':>5} {'p50 ms':>8} {'p95 ms':>8}")
    print(
        f"{'run_pipeline in process (baseline)':52} {len(pipeline):5} {base50 * 1e3:8.1f} "
        f"{base95 * 1e3:8.1f}"
    )
    print(
        f"{'pixelfleet up: POST -> event stream done':52} {tasks:5} {p50 * 1e3:8.1f} "
        f"{p95 * 1e3:8.1f}"
    )
    print(
        f"{'GET /v1/tasks/{id} (median of ' + str(reads) + ')':52} {'':5} {status_read * 1e3:8.2f}"
    )
    print(f"{'GET /healthz (median of ' + str(reads) + ')':52} {'':5} {healthz * 1e3:8.2f}")
    print(
        f"idle CPU of the pixelfleet up tree over {idle_seconds:.0f} s: {idle * 100:.1f}% of a core"
    )
    print(f"ratio sse_completion_vs_pipeline_p50 {p50 / base50:.3f}")
    print(f"ratio sse_completion_vs_pipeline_p95 {p95 / base95:.3f}")
    print(f"ratio status_vs_healthz {status_read / healthz:.3f}")
    print(f"ratio idle_cpu_of_one_core {idle:.3f}")


if __name__ == "__main__":
    main()
