"""`pixelfleet up` scraped as Prometheus would: its API's /metrics also reports its worker
processes (multiprocess mode). A scripted workload moves each counter by what was done, and a
thousand requests for made-up task ids add no series."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from tests.api_helpers import image_bytes, truncated_jpeg
from tests.harness.embedded import RunningPlatform, pixelfleet_up
from tests.live_api import ledger, sign_in, submit, wait_final
from tests.observability.scrape import Scrape, moved

RESIZE_TO_WEBP = {"operations": [{"op": "resize", "width": 300}], "output": {"format": "webp"}}

# The series whose label values are known before any traffic: each exists from a process's start
# (at 0 until it moves), so that `rate()` and the alerts read 0, not nothing.
KNOWN_SERIES = {
    "pixelfleet_tasks_finished_total": {"outcome": ["succeeded", "failed", "cancelled"]},
    "pixelfleet_credits_total": {
        "kind": [
            "grant",
            "purchase",
            "purchase_reversal",
            "task_debit",
            "task_refund",
            "admin_adjust",
        ]
    },
    "pixelfleet_payments_total": {
        "state": ["created", "paid", "failed", "partially_refunded", "refunded"]
    },
    "pixelfleet_webhook_deliveries_total": {
        "outcome": ["delivered", "retrying", "failed", "refused"]
    },
    "pixelfleet_bytes_produced_total": {"format": ["jpeg", "png", "webp", "avif", "gif"]},
    "pixelfleet_source_fetches_total": {
        "outcome": ["fetched", "refused", "unreachable", "too_large", "not_an_image"]
    },
    "pixelfleet_delivered_bytes_total": {"route": ["result", "signed_result", "image"]},
    "pixelfleet_image_requests_total": {"cache": ["hit", "miss"]},
    "pixelfleet_derivations_total": {"outcome": ["succeeded", "failed", "pending"]},
    "pixelfleet_operator_reconciles_total": {
        "resource": ["imagejobs", "workerpools"],
        "handler": ["create", "resync", "delete", "scale"],
    },
}


def test_every_known_series_is_there_from_the_first_scrape(platform: RunningPlatform) -> None:
    scrape = Scrape.of(f"{platform.base_url}/metrics")
    assert scrape.missing(KNOWN_SERIES) == []
    # Those this module's workload never moves read 0.
    assert scrape.value("pixelfleet_credits_total", {"kind": "purchase_reversal"}) == 0
    assert scrape.value("pixelfleet_webhook_deliveries_total", {"outcome": "refused"}) == 0


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    with pixelfleet_up(tmp_path_factory.mktemp("scrape") / "data", workers=2) as running:
        yield running


def test_a_workload_moves_every_counter_by_what_was_done(platform: RunningPlatform) -> None:
    metrics_url = f"{platform.base_url}/metrics"
    sizes = [(800, 600), (1200, 900), (640, 480)]
    photos = [image_bytes("JPEG", size) for size in sizes]
    broken = [truncated_jpeg(), truncated_jpeg()]
    with httpx.Client(base_url=platform.base_url, timeout=30) as http:
        headers = sign_in(http, f"scraped-{uuid.uuid4().hex[:8]}@example.com")
        before = Scrape.of(metrics_url)

        tasks = [submit(http, headers, RESIZE_TO_WEBP, image) for image in photos + broken]
        finals = [wait_final(http, headers, task["id"]) for task in tasks]
        results = [
            http.get(f"/v1/tasks/{task['id']}/result", headers=headers).content
            for task in finals
            if task["status"] == "succeeded"
        ]
        entries = ledger(http, headers)
        after = Scrape.of(metrics_url)

    assert [task["status"] for task in finals] == ["succeeded"] * 3 + ["failed"] * 2
    for result in results:
        with Image.open(io.BytesIO(result)) as image:
            assert image.format == "WEBP"

    def delta(name: str, **labels: str) -> float:
        return moved(before, after, name, **labels)

    # The API's own work.
    assert delta("pixelfleet_tasks_submitted_total") == 5
    assert delta("pixelfleet_bytes_received_total") == sum(map(len, photos + broken))
    assert (
        delta(
            "pixelfleet_http_request_duration_seconds_count",
            route="/v1/tasks",
            method="POST",
            status="202",
        )
        == 5
    )
    # The workers' work, reported through the API's endpoint.
    assert delta("pixelfleet_tasks_finished_total", outcome="succeeded") == 3
    assert delta("pixelfleet_tasks_finished_total", outcome="failed") == 2
    assert delta("pixelfleet_task_queue_seconds_count") == 5
    assert delta("pixelfleet_task_run_seconds_count") == 5
    assert delta("pixelfleet_task_run_seconds_count", outcome="succeeded") == 3
    assert delta("pixelfleet_operation_seconds_count", operation="resize") == 3
    assert delta("pixelfleet_encode_seconds_count", format="webp") == 3
    assert delta("pixelfleet_bytes_produced_total", format="webp") == sum(map(len, results))
    assert delta("pixelfleet_source_megapixels_total") == pytest.approx(
        sum(w * h for w, h in sizes) / 1e6
    )
    # The money, as the user's own ledger tells it.
    for kind in ("task_debit", "task_refund"):
        spent = sum(abs(e["amount"]) for e in entries if e["kind"] == kind)
        assert spent > 0
        assert delta("pixelfleet_credits_total", kind=kind) == spent
    # Latencies were observed, not only counted.
    assert delta("pixelfleet_task_run_seconds_sum") > 0


def test_a_thousand_made_up_task_ids_add_no_series(platform: RunningPlatform) -> None:
    metrics_url = f"{platform.base_url}/metrics"
    with httpx.Client(base_url=platform.base_url, timeout=30) as http:
        headers = sign_in(http, f"curious-{uuid.uuid4().hex[:8]}@example.com")
        http.get(f"/v1/tasks/{uuid.uuid4()}", headers=headers)  # the series exists from here
        http.get(f"/v1/made-up/{uuid.uuid4()}")
        Scrape.of(metrics_url)  # the scrape's own series exists from here
        before = Scrape.of(metrics_url)
        for _ in range(500):
            assert http.get(f"/v1/tasks/{uuid.uuid4()}", headers=headers).status_code == 404
            assert http.get(f"/v1/made-up/{uuid.uuid4()}").status_code == 404
        after = Scrape.of(metrics_url)

    name = "pixelfleet_http_request_duration_seconds_count"
    assert after.count(name) == before.count(name)
    assert len(after.series) == len(before.series)
    routes = after.label_values(name, "route")
    assert "/v1/tasks/{task_id}" in routes
    assert "unmatched" in routes
    assert not [route for route in routes if "made-up" in route or route.count("-") >= 4]
    assert (
        moved(before, after, name, route="/v1/tasks/{task_id}", method="GET", status="404") == 500
    )
    assert moved(before, after, name, route="unmatched", method="GET", status="404") == 500
