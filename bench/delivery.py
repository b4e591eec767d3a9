"""What images on web pages cost a served `pixelfleet up`: made once, then read many times.

Against `pixelfleet up` (two workers, SQLite, local files), with a 1600x1200 photo stored as an
asset and a preset `card` (a 480 px thumbnail, WebP quality 80):
- first reads (the baseline): the first GET of each of N derivative URLs (one per preset
  `card-i`, all alike), four client threads at once: each read makes its image (a task,
  charged) before it answers;
- stored reads: GETs of one derivative URL already made (`Cache-Control: public, immutable`:
  what a CDN's misses would cost), four client threads, one keep-alive connection each;
- signed result reads: GETs of a task's signed result URL (`/v1/results/{token}`), the same way.

The server's CPU per read is the user + system time of the whole `pixelfleet up` process tree
(from /proc) over the reads, divided by them.

    uv run --locked --group test python bench/delivery.py [--reads N] [--quick]

`--quick` makes 4 images and reads 40 times each way: it checks that the benchmark runs.

Prints a table, then `ratio NAME VALUE` lines: `image_stored_vs_first_read` (reads per second
of a stored derivative / of first reads that make theirs: what keeping derivatives saves) and
`image_stored_vs_signed_result` (a stored derivative's reads per second / a signed result's:
1.0 means checking a derivative URL costs no more than a result URL).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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

from tests.harness.embedded import pixelfleet_up  # noqa: E402

CLIENTS = 4
CARD = {
    "operations": [{"op": "thumbnail", "width": 480, "height": 480}],
    "output": {"format": "webp", "quality": 80},
}


def timed_reads(base_url: str, urls: list[str], pid: int) -> tuple[float, float]:
    """GETs each URL (each must answer 200), `CLIENTS` threads at once, one keep-alive
    connection each: reads per second, and the server's CPU milliseconds per read."""
    shares = [urls[i::CLIENTS] for i in range(CLIENTS)]

    def read(share: list[str]) -> None:
        with httpx.Client(base_url=base_url, timeout=120) as http:
            for url in share:
                answer = http.get(url)
                assert answer.status_code == 200, answer.text

    cpu_before = cpu_seconds_by_root({"up": pid})["up"]
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(read, shares))
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds_by_root({"up": pid})["up"] - cpu_before
    return len(urls) / elapsed, cpu / len(urls) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=2000, help="stored and signed reads")
    parser.add_argument("--images", type=int, default=40, help="first reads (images made)")
    parser.add_argument("--quick", action="store_true", help="4 images, 40 reads: a check")
    args = parser.parse_args()
    reads, images = (40, 4) if args.quick else (args.reads, args.images)

    photo = photo_jpeg(1600, 1200, seed=7)
    with (
        tempfile.TemporaryDirectory() as tmp,
        pixelfleet_up(Path(tmp) / "data", env=UNBOUNDED_ACCOUNT, settled=not args.quick) as up,
        httpx.Client(base_url=up.base_url, timeout=120) as http,
    ):
        headers = sign_up(http)
        asset = http.post(
            "/v1/assets", headers=headers, files={"file": ("photo.jpg", photo, "image/jpeg")}
        )
        assert asset.status_code == 201, asset.text

        def image_url(preset: str) -> str:
            saved = http.put(f"/v1/presets/{preset}", headers=headers, json={"pipeline": CARD})
            assert saved.status_code in (200, 201), saved.text
            body = {"source": {"asset": asset.json()["id"]}, "preset": preset}
            signed = http.post("/v1/image-urls", headers=headers, json=body)
            assert signed.status_code == 201, signed.text
            return str(signed.json()["url"])

        firsts = [image_url(f"card-{i}") for i in range(images)]
        stored = image_url("card")
        assert http.get(stored).status_code == 200  # made now, read below
        task_id = submit(http, headers, photo, CARD)
        assert final_status(http, headers, task_id) == "succeeded"
        result = http.get(f"/v1/tasks/{task_id}", headers=headers).json()["result"]["url"]

        pid = up.process.pid
        contenders: list[tuple[str, Callable[[], tuple[float, float]]]] = [
            ("first reads (each makes its image)", lambda: timed_reads(up.base_url, firsts, pid)),
            ("stored derivative", lambda: timed_reads(up.base_url, [stored] * reads, pid)),
            ("signed result", lambda: timed_reads(up.base_url, [result] * reads, pid)),
        ]
        measured = {name: run() for name, run in contenders}

    print(f"{'reads':<38} {'per second':>11} {'server CPU ms/read':>19}")
    for name, (rate, cpu) in measured.items():
        print(f"{name:<38} {rate:>11.1f} {cpu:>19.2f}")
    first, stored_rate, signed = (rate for rate, _ in measured.values())
    print(f"ratio image_stored_vs_first_read {stored_rate / first:.2f}")
    print(f"ratio image_stored_vs_signed_result {stored_rate / signed:.2f}")


if __name__ == "__main__":
    main()
