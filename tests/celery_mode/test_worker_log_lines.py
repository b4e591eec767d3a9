"""A Celery worker's output is JSON lines only, whatever its libraries write: its banner, and
libtiff's complaints from a pool process decoding a corrupt TIFF, included. A task that failed
for its image is one line at INFO with its reason, and no traceback."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api_helpers import sign_up, submit
from tests.celery_mode.conftest import Processes, wait_for_status
from tests.hardening.test_image_attacks import corrupt_lzw_tiff, jpeg_with_corrupt_exif

pytestmark = pytest.mark.celery

THUMBNAIL = {"operations": [{"op": "thumbnail", "width": 32, "height": 32}]}


async def test_a_worker_decoding_hostile_images_writes_only_json_lines_and_no_errors(
    client: httpx.AsyncClient, processes: Processes
) -> None:
    worker = processes.worker()
    headers = await sign_up(client, "noisy-celery@example.com")

    tiff = await submit(client, headers, THUMBNAIL, corrupt_lzw_tiff())
    exif = await submit(client, headers, THUMBNAIL, jpeg_with_corrupt_exif())
    await wait_for_status(client, headers, tiff.json()["id"], {"failed"})
    await wait_for_status(client, headers, exif.json()["id"], {"succeeded"})
    worker.wait_for_log("not yet in table", timeout=30)  # libtiff, from the pool process

    records = [json.loads(line) for line in worker.output.splitlines()]
    assert all(isinstance(record, dict) for record in records)
    [libtiff] = [r for r in records if "not yet in table" in r["event"]]
    assert (libtiff["logger"], libtiff["level"]) == ("stderr", "warning")
    assert any(r["logger"] == "stdout" and "[queues]" in r["event"] for r in records)  # banner
    assert [r for r in records if r["level"] in {"error", "critical"}] == []
    [failure] = [r for r in records if "raised expected" in r["event"]]
    assert failure["level"] == "info"
    assert tiff.json()["id"] in failure["event"]
    assert "traceback" not in failure["data"]
    assert "exception" not in failure
