"""How long a user waits for a small image, against the time the image work itself takes.

Baseline: `run_pipeline` in this process on a 640x480 JPEG (a 256 px thumbnail), image already
in memory. Ours: against a served `pixelfleet up` (two workers), one client at a time: POST
/v1/tasks with the same image, then the task's server-sent event stream (GET
/v1/tasks/{id}/events, as the console follows a task) until its `done` event; timed by the
client from the start of the POST to the `done` line. One bare run comes before each task, so
that the machine's changing speed meets both alike.

Also, on the same server: what a status read costs against `/healthz` (client-side median of
each, the two read in turn on one keep-alive connection), and the CPU the whole `pixelfleet up`
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

from common import (  # noqa: E402  (bench/common.py, beside this file)
    UNBOUNDED_ACCOUNT,
    cpu_seconds_by_root,
    final_status,
    photo_jpeg,
    sign_up,
    submit,
)

from pixelfleet.imaging.limits import ImageLimits  # noqa: E402
from pixelfleet.imaging.runner import run_pipeline  # noqa: E402
from pixelfleet.imaging.spec import parse_pipeline  # noqa: E402
from tests.harness.embedded import pixelfleet_up  # noqa: E402

PIPELINE = {
    "operations": [{"op": "thumbnail", "width": 256, "height": 256}],
    "output": {"format": "jpeg", "quality": 85},
}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class BarePipeline:
    """`run_pipeline` on the image, in this process, timed one run at a time."""

    def __init__(self, image: bytes) -> None:
        self.image = image
        self.pipeline = parse_pipeline(json.dumps(PIPELINE), ImageLimits())
        for _ in range(3):
            self.run()  # warm the codecs

    def run(self) -> float:
        started = time.perf_counter()
        run_pipeline(self.image, self.pipeline, ImageLimits())
        return time.perf_counter() - started


def until_done(http: httpx.Client, headers: dict[str, str], image: bytes) -> tuple[str, float]:
    """Submits the image and follows the task's event stream to its end: (status, seconds)."""
    started = time.perf_counter()
    status = final_status(http, headers, submit(http, headers, image, PIPELINE))
    return status, time.perf_counter() - started


def alternating_medians(
    http: httpx.Client, reads: int, *requests: tuple[str, dict[str, str]]
) -> list[float]:
    """The median seconds of each (path, headers) GET, read in turn, one after another, so that
    a change in the machine's speed meets all of them alike."""
    samples: list[list[float]] = [[] for _ in requests]
    for _ in range(reads):
        for taken, (path, headers) in zip(samples, requests, strict=True):
            started = time.perf_counter()
            response = http.get(path, headers=headers)
            taken.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    return [statistics.median(taken) for taken in samples]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="3 tasks: a check that it runs")
    args = parser.parse_args()
    tasks = 3 if args.quick else args.tasks
    reads = 20 if args.quick else 300
    idle_seconds = 1.0 if args.quick else 5.0
    image = photo_jpeg(640, 480, 3)

    bare = BarePipeline(image)
    with (
        tempfile.TemporaryDirectory() as tmp,
        pixelfleet_up(
            Path(tmp) / "data", env=UNBOUNDED_ACCOUNT, settled=not args.quick
        ) as platform,
        httpx.Client(base_url=platform.base_url, timeout=60) as http,
    ):
        headers = sign_up(http)
        for _ in range(2):
            until_done(http, headers, image)  # warm the workers and their pipeline children
        waits, pipeline = [], []
        for _ in range(tasks):
            # A bare run before each task (the server is idle meanwhile): a change in the
            # machine's speed meets both alike.
            pipeline.append(bare.run())
            status, seconds = until_done(http, headers, image)
            if status != "succeeded":
                raise SystemExit(f"a task ended {status}")
            waits.append(seconds)
        task_id = http.get("/v1/tasks", headers=headers, params={"limit": 1}).json()["items"][0][
            "id"
        ]
        status_read, healthz = alternating_medians(
            http, reads, (f"/v1/tasks/{task_id}", headers), ("/healthz", {})
        )

        tree = {"pixelfleet up": platform.process.pid}
        before = cpu_seconds_by_root(tree)["pixelfleet up"]
        time.sleep(idle_seconds)  # the measurement: what the tree spends while nothing happens
        idle = (cpu_seconds_by_root(tree)["pixelfleet up"] - before) / idle_seconds

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
