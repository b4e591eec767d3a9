"""`pixelfleet up` against a peer image server and a plain process pool, on the same cores.

Two workloads, each on the same JPEGs for every contender:
- `12mp`: a 4000x3000 JPEG (a phone camera's) -> 512 px JPEG thumbnail (quality 85);
- `webp`: a 1600x1200 JPEG -> 480 px wide WebP (quality 80).

Contenders, one after another, each warmed first:
- pool (the baseline): `run_pipeline` in a process pool, one process per core, images in memory,
  results thrown away;
- `pixelfleet up` (two workers, SQLite, local files): four client threads upload the images at
  once; timed from the first upload until the last task has succeeded (by the server's clock);
  the client reads the task list every 0.2 s to see the end, and those reads count in its CPU;
- thumbor 7.8 (PyPI), `--processes 2`, its file loader reading the same images from disk, no
  storage: four client threads fetch the resized images, a new connection per request (with
  keep-alive every connection can land on one of its processes). thumbor pins `Pillow<13`, so
  it lives in its own virtual environment, made with `uv` under
  `$XDG_CACHE_HOME/pixelfleet-bench/thumbor-7.8.0` (default `~/.cache`) and reused.

CPU per image is the user + system time of each contender's processes (from /proc; for the pool,
the pipeline's own process time), divided by the images.

    uv run --locked --group test python bench/peers.py [--images N] [--quick]

`--quick` runs 3 small images per workload and never installs thumbor: without the environment
it prints `skipped thumbor: ...` and goes on. It checks that the benchmark runs.

Prints a table, then `ratio NAME VALUE` lines: `embedded_vs_pool_12mp`, `embedded_vs_thumbor_12mp`,
`embedded_vs_pool_webp`, `embedded_vs_thumbor_webp` (images per second of `pixelfleet up` / the
other's: 1.0 means as fast).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from common import (  # noqa: E402  (bench/common.py, beside this file)
    UNBOUNDED_ACCOUNT,
    cpu_seconds_by_root,
    finish_times,
    photo_like,
    sign_up,
    submit,
)

from pixelfleet.imaging.limits import ImageLimits  # noqa: E402
from pixelfleet.imaging.runner import run_pipeline  # noqa: E402
from pixelfleet.imaging.spec import Pipeline, parse_pipeline  # noqa: E402
from tests.harness.embedded import pixelfleet_up  # noqa: E402
from tests.harness.ports import free_port  # noqa: E402

THUMBOR_VERSION = "7.8.0"
CLIENTS = 4
DISTINCT_IMAGES = 4


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    size: tuple[int, int]
    grain: float
    pipeline: dict[str, object]
    thumbor_path: str  # before the image's name


WORKLOADS = (
    Workload(
        "12mp",
        "4000x3000 JPEG -> 512 px JPEG thumbnail",
        (4000, 3000),
        0.25,
        {
            "operations": [{"op": "thumbnail", "width": 512, "height": 512}],
            "output": {"format": "jpeg", "quality": 85},
        },
        "/unsafe/fit-in/512x512/filters:quality(85)/",
    ),
    Workload(
        "webp",
        "1600x1200 JPEG -> 480 px WebP",
        (1600, 1200),
        0.08,
        {
            "operations": [{"op": "resize", "width": 480}],
            "output": {"format": "webp", "quality": 80},
        },
        "/unsafe/480x0/filters:format(webp):quality(80)/",
    ),
)


@dataclass
class Result:
    seconds: float
    cpu_seconds: float


def make_images(workload: Workload, directory: Path, scale: float) -> list[Path]:
    width, height = (int(side * scale) for side in workload.size)
    paths = []
    for seed in range(DISTINCT_IMAGES):
        path = directory / f"{workload.name}-{seed}.jpg"
        photo_like(width, height, seed, grain=workload.grain).save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------ the baseline

_pipeline: Pipeline | None = None


def _load_pipeline(document: str) -> None:
    global _pipeline
    _pipeline = parse_pipeline(document, ImageLimits())


def _run(data: bytes) -> float:
    assert _pipeline is not None
    started = time.process_time()
    run_pipeline(data, _pipeline, ImageLimits())
    return time.process_time() - started


def in_pool(workload: Workload, images: list[bytes], cores: int) -> Result:
    with multiprocessing.get_context("spawn").Pool(
        cores, initializer=_load_pipeline, initargs=(json.dumps(workload.pipeline),)
    ) as pool:
        pool.map(_run, images[: cores * 2], chunksize=1)  # warm every process
        started = time.perf_counter()
        cpu = pool.map(_run, images, chunksize=1)
        return Result(time.perf_counter() - started, sum(cpu))


# ----------------------------------------------------------------------------- pixelfleet up


def through_pixelfleet(
    data_dir: Path, work: dict[str, list[bytes]], warmup: int, *, settled: bool
) -> dict[str, Result]:
    results = {}
    with (
        pixelfleet_up(data_dir, env=UNBOUNDED_ACCOUNT, settled=settled) as platform,
        httpx.Client(base_url=platform.base_url, timeout=300) as http,
    ):
        headers = sign_up(http)
        tree = {"up": platform.process.pid}

        def run(workload: Workload, images: list[bytes]) -> Result:
            before = cpu_seconds_by_root(tree)["up"]
            started = time.time()
            with ThreadPoolExecutor(CLIENTS) as pool:
                ids = set(
                    pool.map(lambda image: submit(http, headers, image, workload.pipeline), images)
                )
            finished = finish_times(http, headers, ids)
            cpu = cpu_seconds_by_root(tree)["up"] - before
            return Result(max(finished.values()).timestamp() - started, cpu)

        for workload in WORKLOADS:
            run(workload, work[workload.name][:warmup])
            results[workload.name] = run(workload, work[workload.name])
    return results


# ------------------------------------------------------------------------------------ thumbor


def thumbor_environment(install: bool) -> tuple[Path | None, str]:
    """thumbor's own virtual environment: (its `thumbor` program or None, why not)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "pixelfleet-bench" / f"thumbor-{THUMBOR_VERSION}"
    program = venv / "bin" / "thumbor"
    if program.exists():
        return program, ""
    if not install:
        return None, f"no environment at {venv} (a full run installs it)"
    uv = shutil.which("uv")
    if uv is None:
        return None, "uv is not on PATH"
    try:
        subprocess.run(
            [uv, "venv", "--python", f"{sys.version_info.major}.{sys.version_info.minor}",
             str(venv)],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        subprocess.run(
            [uv, "pip", "install", "--python", str(venv / "bin" / "python"),
             f"thumbor=={THUMBOR_VERSION}"],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(venv, ignore_errors=True)
        stderr = getattr(exc, "stderr", b"") or b""
        return None, f"installing thumbor {THUMBOR_VERSION} failed: {stderr.decode()[-300:]}"
    return program, ""


def through_thumbor(
    program: Path, work_dir: Path, work: dict[str, list[Path]], warmup: int
) -> dict[str, Result]:
    config = work_dir / "thumbor.conf"
    config.write_text(
        "LOADER = 'thumbor.loaders.file_loader'\n"
        f"FILE_LOADER_ROOT_PATH = {str(work_dir)!r}\n"
        "ALLOW_UNSAFE_URL = True\n"
        "STORAGE = 'thumbor.storages.no_storage'\n"
        "RESULT_STORAGE = None\n"
    )
    port = free_port()
    log = (work_dir / "thumbor.log").open("wb")
    process = subprocess.Popen(
        [str(program), "--port", str(port), "--conf", str(config), "--processes", "2"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthcheck", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"thumbor did not start:\n{(work_dir / 'thumbor.log').read_text()}"
                )
            time.sleep(0.1)

        def fetch(url: str) -> None:
            # A new connection per request (httpx.get opens one and closes it).
            response = httpx.get(url, timeout=300)
            assert response.status_code == 200, (url, response.status_code)

        results = {}
        tree = {"thumbor": process.pid}
        for workload in WORKLOADS:
            urls = [f"{base}{workload.thumbor_path}{path.name}" for path in work[workload.name]]
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(fetch, urls[: max(warmup, CLIENTS)]))
                before = cpu_seconds_by_root(tree)["thumbor"]
                started = time.perf_counter()
                list(pool.map(fetch, urls))
                seconds = time.perf_counter() - started
            results[workload.name] = Result(seconds, cpu_seconds_by_root(tree)["thumbor"] - before)
        return results
    finally:
        # thumbor's `--processes` forks workers into its session: end them all, not only the
        # first process (they would go on holding the port and memory after the run).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=80, help="per workload")
    parser.add_argument("--quick", action="store_true", help="3 small images per workload")
    args = parser.parse_args()
    count = 3 if args.quick else args.images
    scale = 0.25 if args.quick else 1.0
    warmup = 1 if args.quick else CLIENTS
    cores = os.cpu_count() or 1
    program, skipped = thumbor_environment(install=not args.quick)
    if program is None and not args.quick:
        raise SystemExit(f"thumbor is needed for a full run: {skipped}")

    results: dict[str, dict[str, Result]] = {"pool": {}}
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        work_dir = Path(tmp)
        # The same files, in the same order, for every contender.
        paths = {w.name: make_images(w, work_dir, scale) for w in WORKLOADS}
        order = {
            name: [found[i % DISTINCT_IMAGES] for i in range(count)]
            for name, found in paths.items()
        }
        data = {name: [p.read_bytes() for p in found] for name, found in order.items()}
        for workload in WORKLOADS:
            results["pool"][workload.name] = in_pool(workload, data[workload.name], cores)
        results["pixelfleet up"] = through_pixelfleet(
            work_dir / "data", data, warmup, settled=not args.quick
        )
        if program is not None:
            results["thumbor"] = through_thumbor(program, work_dir, order, warmup)

    print(f"{count} images per workload, {CLIENTS} clients, {cores} cores")
    print(f"{'workload':10} {'contender':16} {'seconds':>8} {'images/s':>9} {'CPU ms/image':>13}")
    for workload in WORKLOADS:
        for contender, by_workload in results.items():
            result = by_workload[workload.name]
            print(
                f"{workload.name:10} {contender:16} {result.seconds:8.2f} "
                f"{count / result.seconds:9.2f} {result.cpu_seconds / count * 1000:13.1f}"
            )
    print("workloads: " + "; ".join(f"{w.name} = {w.description}" for w in WORKLOADS))
    if program is None:
        print(f"skipped thumbor: {skipped}")
    for workload in WORKLOADS:
        ours = results["pixelfleet up"][workload.name].seconds
        pool = results["pool"][workload.name].seconds
        print(f"ratio embedded_vs_pool_{workload.name} {pool / ours:.3f}")
        if program is not None:
            thumbor = results["thumbor"][workload.name].seconds
            print(f"ratio embedded_vs_thumbor_{workload.name} {thumbor / ours:.3f}")


if __name__ == "__main__":
    main()
