"""A worker's memory on 40 MP images: its peak and what it keeps afterwards, against a budget.

Against a served `pixelfleet up` with one worker: a small task first (so the worker has started
its pipeline children), then a 40 MP JPEG (7300x5480) through each case, one task at a time:
full-size WebP, a 512 px thumbnail, and four variants (150/640/1280/2048 px). Memory is read
from /proc for the worker process and each of its pipeline children: `VmHWM` (peak resident
set; reset before each case through `/proc/PID/clear_refs`) and `VmRSS` (resident now).

The budget is per process: the Helm chart's worker memory limit divided by the pool processes
it runs (`worker.resources.limits.memory` / `worker.concurrency`, read from
charts/pixelfleet/values.yaml at run time: 2Gi / 2 = 1 GiB when this was written).

    uv run --locked --group test python bench/memory.py [--quick]

`--quick` uses a 2000x1500 image: it checks that the benchmark runs.

Prints a table, then `ratio NAME VALUE` lines: `peak_vs_budget` (the largest peak of any one
process / the budget: above 1.0 the chart's limit can kill a worker), `retained_vs_baseline`
(the worker tree's resident memory after the last case / before the first one) and
`retained_growth_vs_50mb` (that growth in MB / 50, the issue's bound: above 1.0 is too much).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

BENCH_DIR = Path(__file__).resolve().parent
REPOSITORY = BENCH_DIR.parent
sys.path.insert(0, str(REPOSITORY))

from common import (  # noqa: E402  (bench/common.py, beside this file)
    VARIANTS_PIPELINE,
    final_status,
    photo_jpeg,
    sign_up,
    submit,
)

from pixelfleet.jobs.pipeline_processes import CHILD_MODULE  # noqa: E402
from tests.harness.embedded import pixelfleet_up  # noqa: E402

CASES: dict[str, dict[str, object]] = {
    "full_size_webp": {"operations": [], "output": {"format": "webp", "quality": 80}},
    "thumbnail_512": {
        "operations": [{"op": "thumbnail", "width": 512, "height": 512}],
        "output": {"format": "jpeg", "quality": 85},
    },
    "variants_4": VARIANTS_PIPELINE,
}
SMALL = {"operations": [{"op": "thumbnail", "width": 64, "height": 64}]}
MB = 1024 * 1024
UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "K": 1000, "M": 1000**2, "G": 1000**3}


def budget_bytes() -> tuple[int, str]:
    """The per-process budget and where it comes from."""
    values = yaml.safe_load((REPOSITORY / "charts/pixelfleet/values.yaml").read_text())
    limit = str(values["worker"]["resources"]["limits"]["memory"])
    concurrency = int(values["worker"]["concurrency"])
    unit = next((u for u in sorted(UNITS, key=len, reverse=True) if limit.endswith(u)), "")
    total = int(float(limit.removesuffix(unit) if unit else limit) * UNITS.get(unit, 1))
    source = f"chart worker memory limit {limit} / concurrency {concurrency}"
    return total // concurrency, source


def status_field(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def descendants(pid: int) -> list[int]:
    found = []
    for child in children_of(pid):
        found.append(child)
        found.extend(descendants(child))
    return found


def worker_tree(up_pid: int) -> tuple[int, list[int]]:
    """The worker process (the parent of the pipeline children) and its children."""
    for pid in descendants(up_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if CHILD_MODULE in cmdline:
            stat = Path(f"/proc/{pid}/stat").read_text()
            worker = int(stat.rsplit(")", 1)[1].split()[1])
            return worker, children_of(worker)
    raise SystemExit("no pipeline child found under pixelfleet up")


def reset_peaks(pids: list[int]) -> bool:
    try:
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run_task(http: httpx.Client, headers: dict[str, str], image: bytes, pipeline: object) -> None:
    task_id = submit(http, headers, image, pipeline)
    status = final_status(http, headers, task_id)
    if status != "succeeded":
        raise SystemExit(f"task {task_id} ended {status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 3 MP image: a check that it runs")
    args = parser.parse_args()
    size = (2000, 1500) if args.quick else (7300, 5480)
    budget, source = budget_bytes()
    image = photo_jpeg(*size, 5, quality=85)
    small = photo_jpeg(320, 240, 6, quality=75)  # Pillow's default quality

    rows: list[tuple[str, int, int, int]] = []  # case, worker's peak, a child's peak, tree after
    with (
        tempfile.TemporaryDirectory() as tmp,
        pixelfleet_up(Path(tmp) / "data", workers=1, settled=not args.quick) as platform,
        httpx.Client(base_url=platform.base_url, timeout=300) as http,
    ):
        headers = sign_up(http)
        run_task(http, headers, small, SMALL)
        worker, _ = worker_tree(platform.process.pid)
        time.sleep(0.5)  # let the first task's memory settle before the baseline
        tree = [worker, *children_of(worker)]
        baseline = sum(status_field(pid, "VmRSS") for pid in tree)
        peaks_reset = True
        for case, pipeline in CASES.items():
            tree = [worker, *children_of(worker)]
            peaks_reset = reset_peaks(tree) and peaks_reset
            run_task(http, headers, image, pipeline)
            children = children_of(worker)
            child_peak = max((status_field(pid, "VmHWM") for pid in children), default=0)
            after = sum(status_field(pid, "VmRSS") for pid in [worker, *children])
            rows.append((case, status_field(worker, "VmHWM"), child_peak, after))

    decode = size[0] * size[1] * 3
    print(
        f"{size[0]}x{size[1]} JPEG ({len(image) / 1e6:.1f} MB, {decode / MB:.0f} MB decoded RGB), "
        f"one worker of pixelfleet up, one task at a time"
    )
    print(f"budget per process: {budget / MB:.0f} MB ({source})")
    if not peaks_reset:
        print("(/proc/PID/clear_refs refused: each peak is the process's peak since it started)")
    print(f"worker tree resident before the first case: {baseline / MB:.0f} MB")
    print(
        f"{'case':16} {'worker peak MB':>14} {'child peak MB':>14} {'child/decode':>12} "
        f"{'after MB':>9}"
    )
    for case, worker_peak, child_peak, after in rows:
        print(
            f"{case:16} {worker_peak / MB:14.0f} {child_peak / MB:14.0f} "
            f"{child_peak / decode:12.2f} {after / MB:9.0f}"
        )
    print("(peak: VmHWM during the case of the worker process and of its busiest pipeline child;")
    print(" after: VmRSS of the worker and its children once the task has succeeded)")
    largest = max(max(worker_peak, child_peak) for _, worker_peak, child_peak, _ in rows)
    retained = rows[-1][3]
    print(f"ratio peak_vs_budget {largest / budget:.3f}")
    print(f"ratio retained_vs_baseline {retained / baseline:.3f}")
    print(f"ratio retained_growth_vs_50mb {(retained - baseline) / MB / 50:.3f}")


if __name__ == "__main__":
    main()
