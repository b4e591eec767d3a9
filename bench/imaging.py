"""Imaging speed and memory on one core: PixelFleet's pipeline against naive Pillow and libvips.

    uv run --locked --group bench python bench/imaging.py [--quick]

`--quick` runs every case on quarter-size photos, twice: it checks that the benchmark runs.

Generates its own photo-like images, runs every case in a fresh process pinned to one core
(peak memory is the resident-set growth during one run of the case), prints a table and ends
with `ratio NAME VALUE` lines: the baseline's median time divided by ours (higher is better
for us), and for the thumbnail the naive path's peak memory divided by ours.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

CASES = {
    "thumbnail": ("12 MP JPEG -> 512 px JPEG thumbnail", "photo12mp.jpg"),
    "webp1600": ("12 MP JPEG -> 1600 px WebP", "photo12mp.jpg"),
    "chain1080": ("1080p JPEG -> resize+blur+grayscale+rotate -> PNG", "photo1080p.jpg"),
    "variants4": ("12 MP JPEG -> 4 variants (150/640/1280/2048 px)", "photo12mp.jpg"),
}
IMPLEMENTATIONS = ("pixelfleet", "naive_pillow", "pyvips")
VARIANT_WIDTHS = ((150, "webp"), (640, "jpeg"), (1280, "webp"), (2048, "jpeg"))


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


def make_inputs(directory: Path, scale: float = 1.0) -> None:
    """The two photos; a `scale` below 1 makes them smaller (the quick check)."""
    photo_like(int(4000 * scale), int(3000 * scale), 1).save(
        directory / "photo12mp.jpg", "JPEG", quality=90
    )
    photo_like(int(1920 * scale), int(1080 * scale), 2).save(
        directory / "photo1080p.jpg", "JPEG", quality=90
    )


# ----------------------------------------------------------------- the three implementations


def pixelfleet_case(case: str) -> Callable[[bytes], object]:
    from pixelfleet.imaging.limits import ImageLimits
    from pixelfleet.imaging.runner import run_pipeline
    from pixelfleet.imaging.spec import parse_pipeline

    documents: dict[str, object] = {
        "thumbnail": {
            "operations": [{"op": "thumbnail", "width": 512, "height": 512}],
            "output": {"format": "jpeg", "quality": 85},
        },
        "webp1600": {
            "operations": [{"op": "resize", "width": 1600}],
            "output": {"format": "webp", "quality": 80},
        },
        "chain1080": {
            "operations": [
                {"op": "resize", "width": 1280},
                {"op": "blur", "sigma": 2},
                {"op": "grayscale"},
                {"op": "rotate", "angle": 90},
            ],
            "output": {"format": "png"},
        },
        "variants4": {
            "variants": [
                {
                    "name": f"w{width}",
                    "operations": [{"op": "resize", "width": width}],
                    "output": {"format": fmt, "quality": 80},
                }
                for width, fmt in VARIANT_WIDTHS
            ]
        },
    }
    limits = ImageLimits()
    pipeline = parse_pipeline(json.dumps(documents[case]), limits)
    return lambda data: run_pipeline(data, pipeline, limits)


def _naive_resize(image: Image.Image, width: int) -> Image.Image:
    height = round(image.height * width / image.width)
    return image.resize((width, height), Image.Resampling.LANCZOS)


def _save(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def naive_case(case: str) -> Callable[[bytes], object]:
    """What a plain Pillow program does: load everything, one full LANCZOS resample, save."""

    def run(data: bytes) -> object:
        image = Image.open(io.BytesIO(data))
        image.load()
        if case == "thumbnail":
            scale = 512 / max(image.size)
            size = (round(image.width * scale), round(image.height * scale))
            return _save(image.resize(size, Image.Resampling.LANCZOS), "JPEG", quality=85)
        if case == "webp1600":
            return _save(_naive_resize(image, 1600), "WEBP", quality=80)
        if case == "chain1080":
            step = _naive_resize(image, 1280).filter(ImageFilter.GaussianBlur(2))
            return _save(step.convert("L").rotate(90, expand=True), "PNG")
        return [
            _save(_naive_resize(image, width), fmt.upper(), quality=80)
            for width, fmt in VARIANT_WIDTHS
        ]

    return run


def pyvips_case(case: str) -> Callable[[bytes], object]:
    import pyvips

    def run(data: bytes) -> object:
        if case == "thumbnail":
            return pyvips.Image.thumbnail_buffer(data, 512).write_to_buffer(".jpg[Q=85]")
        if case == "webp1600":
            return pyvips.Image.thumbnail_buffer(data, 1600).write_to_buffer(".webp[Q=80]")
        if case == "chain1080":
            image = pyvips.Image.new_from_buffer(data, "")
            image = image.resize(1280 / image.width, kernel="lanczos3").gaussblur(2)
            return image.colourspace("b-w").rot90().write_to_buffer(".png")
        return [
            pyvips.Image.thumbnail_buffer(data, width).write_to_buffer(
                f".{'jpg' if fmt == 'jpeg' else fmt}[Q=80]"
            )
            for width, fmt in VARIANT_WIDTHS
        ]

    return run


FACTORIES = {"pixelfleet": pixelfleet_case, "naive_pillow": naive_case, "pyvips": pyvips_case}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss() -> int:
    """Resets the kernel's high-water mark of resident memory to the current resident size
    (Linux `clear_refs`), and returns that size in KiB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS")


def peak_rss_kb() -> int:
    return _status_kb("VmHWM")


def measure(case: str, implementation: str, path: Path, repeats: int) -> dict[str, float]:
    """Runs in its own process on one core."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    data = path.read_bytes()
    run = FACTORIES[implementation](case)
    before_kb = reset_peak_rss()
    run(data)  # the first run also shows the peak memory of one image
    peak_mb = (peak_rss_kb() - before_kb) / 1024
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(data)
        timings.append(time.perf_counter() - started)
    return {"median_ms": statistics.median(timings) * 1000, "peak_mb": peak_mb}


def pyvips_available() -> bool:
    try:
        import pyvips  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="quarter-size photos, two repeats: a check that it runs, not a measurement",
    )
    parser.add_argument(
        "--measure", nargs=3, metavar=("CASE", "IMPL", "PATH"), help=argparse.SUPPRESS
    )
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 15)
    if args.measure:
        case, implementation, path = args.measure
        print(json.dumps(measure(case, implementation, Path(path), repeats)))
        return

    implementations = [i for i in IMPLEMENTATIONS if i != "pyvips" or pyvips_available()]
    results: dict[tuple[str, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        make_inputs(directory, 0.25 if args.quick else 1.0)
        for case, (_, filename) in CASES.items():
            for implementation in implementations:
                output = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--measure",
                        case,
                        implementation,
                        str(directory / filename),
                        "--repeats",
                        str(repeats),
                    ],
                    env={**os.environ, "VIPS_CONCURRENCY": "1", "OMP_NUM_THREADS": "1"},
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results[case, implementation] = json.loads(output.stdout.strip().splitlines()[-1])
        megapixels = {
            name: Image.open(directory / name).size for name in ("photo12mp.jpg", "photo1080p.jpg")
        }

    print(f"one core, median of {repeats} runs; peak memory = resident-set growth in one run")
    print(
        f"{'case':12} {'implementation':14} {'median ms':>10} {'images/s':>9} {'MP/s':>8} "
        f"{'peak MB':>8}"
    )
    for case, (_description, filename) in CASES.items():
        width, height = megapixels[filename]
        for implementation in implementations:
            result = results[case, implementation]
            seconds = result["median_ms"] / 1000
            print(
                f"{case:12} {implementation:14} {result['median_ms']:10.1f} {1 / seconds:9.1f} "
                f"{width * height / 1e6 / seconds:8.1f} {result['peak_mb']:8.1f}"
            )
    print("cases: " + "; ".join(f"{case} = {d}" for case, (d, _) in CASES.items()))

    ours = {case: results[case, "pixelfleet"] for case in CASES}
    for case in CASES:
        naive = results[case, "naive_pillow"]["median_ms"]
        print(f"ratio {case}_vs_naive_pillow {naive / ours[case]['median_ms']:.3f}")
        if "pyvips" in implementations:
            vips = results[case, "pyvips"]["median_ms"]
            print(f"ratio {case}_vs_pyvips {vips / ours[case]['median_ms']:.3f}")
    naive_peak = results["thumbnail", "naive_pillow"]["peak_mb"]
    our_peak = max(ours["thumbnail"]["peak_mb"], 0.1)
    print(f"ratio thumbnail_memory_vs_naive_pillow {naive_peak / our_peak:.3f}")


if __name__ == "__main__":
    main()
