"""Every benchmark in bench/ still runs: each script, in its quick mode (a tiny workload), exits 0
and ends with its `ratio NAME VALUE` lines. Only the names and the shape are checked, never a
value: a benchmark measures, a test does not time."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.heavy  # a pixelfleet up, a cluster or a Celery fleet per script

REPOSITORY = Path(__file__).resolve().parent.parent
BENCH = REPOSITORY / "bench"
RATIO = re.compile(r"^ratio ([a-z0-9_]+) (\S+)$")
IMAGING_CASES = ("thumbnail", "webp1600", "chain1080", "variants4")

# Each script's ratio names in quick mode: (always printed, printed when a peer is available).
RATIOS: dict[str, tuple[set[str], set[str]]] = {
    "auth_timing.py": ({"login_known_vs_unknown", "signup_new_vs_taken"}, set()),
    "autoscale.py": ({"interrupted_tasks_list_only_vs_ours", "p95_wait_list_only_vs_ours"}, set()),
    "delivery.py": ({"image_stored_vs_first_read", "image_stored_vs_signed_result"}, set()),
    "fair_share.py": (
        {
            "fair_small_p95_wait_with_vs_without_batch",
            "fair_small_p95_wait_vs_stated_bound",
            "fifo_vs_fair_small_p95_wait_with_batch",
        },
        set(),
    ),
    "embedded_overhead.py": (
        {"embedded_1_worker_vs_in_process", "embedded_2_workers_vs_in_process"},
        set(),
    ),
    "imaging.py": (
        {f"{case}_vs_naive_pillow" for case in IMAGING_CASES}
        | {"thumbnail_memory_vs_naive_pillow"},
        {f"{case}_vs_pyvips" for case in IMAGING_CASES},  # when libvips loads
    ),
    "latency.py": (
        {
            "sse_completion_vs_pipeline_p50",
            "sse_completion_vs_pipeline_p95",
            "status_vs_healthz",
            "idle_cpu_of_one_core",
        },
        set(),
    ),
    "memory.py": ({"peak_vs_budget", "retained_vs_baseline", "retained_growth_vs_50mb"}, set()),
    "observability_overhead.py": ({"instrumented_vs_bare"}, set()),
    "operator_burst.py": (
        {"seconds_per_job_large_vs_small", "messages_per_job_2", "messages_per_job_4"},
        set(),
    ),
    "peers.py": (
        {"embedded_vs_pool_12mp", "embedded_vs_pool_webp"},
        # Required unless the output says `skipped thumbor: ...` (no environment for it).
        {"embedded_vs_thumbor_12mp", "embedded_vs_thumbor_webp"},
    ),
    "row_security_overhead.py": ({"rls_vs_owner"}, set()),
    "throughput.py": ({"pipeline_vs_inprocess"}, set()),
}
MARKS = {
    "throughput.py": [pytest.mark.celery],
    "fair_share.py": [pytest.mark.celery],
    "operator_burst.py": [pytest.mark.operator],
}
MAIN_GUARD = 'if __name__ == "__main__":'


def scripts() -> list[Path]:
    """The benchmarks: every module of bench/ that runs as a program. The others are what the
    benchmarks share, which they import."""
    return [path for path in sorted(BENCH.glob("*.py")) if MAIN_GUARD in path.read_text()]


def trailing_ratios(output: str) -> dict[str, float]:
    """The `ratio NAME VALUE` lines that end the output; each value must be a finite number."""
    lines = output.rstrip("\n").splitlines()
    ratios: dict[str, float] = {}
    for line in reversed(lines):
        match = RATIO.match(line)
        if match is None:
            break
        name, value = match.groups()
        assert name not in ratios, f"`ratio {name}` printed twice"
        ratios[name] = float(value)
        assert math.isfinite(ratios[name]), line
    earlier = [line for line in lines[: len(lines) - len(ratios)] if line.startswith("ratio ")]
    assert not earlier, f"ratio lines before the final block: {earlier}"
    return ratios


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(path.name, marks=MARKS.get(path.name, []))
        for path in scripts()
    ],
)
def test_a_benchmark_runs_in_quick_mode_and_ends_with_its_ratio_lines(script: str) -> None:
    assert script in RATIOS, f"bench/{script} is new: list its ratio names in RATIOS"
    required, optional = RATIOS[script]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PIXELFLEET_")}
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    names = set(trailing_ratios(result.stdout))
    if script == "peers.py" and "skipped thumbor: " not in result.stdout:
        required, optional = required | optional, set()
    assert required <= names, f"missing: {required - names}\n{result.stdout}"
    assert names <= required | optional, f"unexpected: {names - required - optional}"


def test_every_module_of_bench_that_is_no_benchmark_is_shared_by_the_benchmarks() -> None:
    # A script that forgot its `__main__` guard would otherwise go unchecked.
    sources = [path.read_text() for path in scripts()]
    for path in set(BENCH.glob("*.py")) - set(scripts()):
        imported = re.compile(rf"^(from {path.stem} import|import {path.stem}\b)", re.MULTILINE)
        assert any(imported.search(source) for source in sources), (
            f"bench/{path.name} is neither a benchmark (no `{MAIN_GUARD}`) nor imported by one"
        )
