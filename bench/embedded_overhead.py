"""What the platform costs on top of the image work itself.

Baseline: the same pipeline run in-process, one image after another (`run_pipeline`, one core).
Ours: the same images submitted over HTTP by four concurrent clients to `pixelfleet up` (API,
SQLite queue, worker processes, storage), after a warm-up round of four, timed from the first
submission until the last task has succeeded (by the server's clock).

    uv run --group test python bench/embedded_overhead.py [--tasks N] [--quick]

Prints a table, then `ratio NAME VALUE` lines (ours / baseline throughput: 1.0 means the
platform adds nothing; above 1.0, worker processes run in parallel).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import UNBOUNDED_ACCOUNT, finish_times, sign_up, submit

from pixelfleet.imaging.limits import ImageLimits
from pixelfleet.imaging.runner import run_pipeline
from pixelfleet.imaging.spec import parse_pipeline
from tests.harness.embedded import pixelfleet_up

PIPELINE = {"operations": [{"op": "resize", "width": 480}], "output": {"format": "webp"}}
CLIENTS = 4


def photo(seed: int) -> bytes:
    image = Image.effect_mandelbrot((1600, 1200), (-2 + seed * 0.01, -1.2, 1, 1.2), 60)
    rgb = Image.merge(
        "RGB", (image, image.rotate(180), image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    )
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=90)
    return out.getvalue()


def baseline(images: list[bytes]) -> float:
    pipeline = parse_pipeline(json.dumps(PIPELINE), ImageLimits())
    started = time.perf_counter()
    for data in images:
        run_pipeline(data, pipeline, ImageLimits())
    return time.perf_counter() - started


def through_the_platform(
    images: list[bytes], workers: int, *, settled: bool
) -> tuple[float, list[float]]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        pixelfleet_up(
            Path(tmp) / "data", workers=workers, env=UNBOUNDED_ACCOUNT, settled=settled
        ) as platform,
        httpx.Client(base_url=platform.base_url, timeout=60) as http,
    ):
        headers = sign_up(http)

        def timed_submit(image: bytes) -> tuple[str, float]:
            before = time.perf_counter()
            return submit(http, headers, image, PIPELINE), time.perf_counter() - before

        # A few clients at once, as an application's users would submit; first a warm-up
        # round, so that the processes' first requests and runs (imports, the pipeline
        # processes' start) are not timed.
        with ThreadPoolExecutor(CLIENTS) as pool:
            warm = [task_id for task_id, _ in pool.map(timed_submit, images[:CLIENTS])]
            finish_times(http, headers, set(warm), within=600)
            started = time.time()
            submitted = list(pool.map(timed_submit, images))
        finished = finish_times(http, headers, {task_id for task_id, _ in submitted}, within=600)
        return max(finished.values()).timestamp() - started, [s for _, s in submitted]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="4 tasks: a check that it runs")
    args = parser.parse_args()
    if args.quick:
        args.tasks = 4
    images = [photo(seed) for seed in range(args.tasks)]

    base = baseline(images)
    rows = [("in-process run_pipeline (baseline)", base, [])]
    for workers in (1, 2):
        elapsed, latencies = through_the_platform(images, workers, settled=not args.quick)
        rows.append((f"pixelfleet up, {workers} worker(s)", elapsed, latencies))

    print(f"{args.tasks} tasks: 1600x1200 JPEG -> 480 px WebP")
    print(f"{'path':40} {'seconds':>8} {'tasks/s':>8} {'submit p50 ms':>14} {'p95 ms':>8}")
    for name, seconds, latencies in rows:
        p50 = f"{statistics.median(latencies) * 1000:.1f}" if latencies else "-"
        p95 = f"{statistics.quantiles(latencies, n=20)[-1] * 1000:.1f}" if latencies else "-"
        print(f"{name:40} {seconds:8.2f} {args.tasks / seconds:8.1f} {p50:>14} {p95:>8}")
    for (_name, seconds, _), label in zip(
        rows[1:], ("embedded_1_worker", "embedded_2_workers"), strict=True
    ):
        print(f"ratio {label}_vs_in_process {base / seconds:.3f}")


if __name__ == "__main__":
    main()
