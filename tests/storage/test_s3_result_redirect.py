"""With S3 storage a signed result URL sends its reader to the bucket (a 302 to a presigned
GET), so the bytes skip the API; `PIXELFLEET_RESULT_REDIRECT=false` keeps them on the API."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from prometheus_client import REGISTRY

from pixelfleet.context import ProcessContext
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import image_bytes, sign_up, submit
from tests.harness.s3 import MotoServer

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

PIPELINE = {"operations": [{"op": "resize", "width": 200}], "output": {"format": "webp"}}


async def _finished(s3_api: httpx.AsyncClient, ctx: ProcessContext, email: str) -> dict[str, Any]:
    headers = await sign_up(s3_api, email)
    submitted = await submit(s3_api, headers, PIPELINE, image_bytes("JPEG", (400, 300)))
    assert submitted.status_code == 202, submitted.text
    assert await drain_queue(ctx) == ["succeeded"]
    task = await s3_api.get(f"/v1/tasks/{submitted.json()['id']}", headers=headers)
    return {"headers": headers, "task": task.json()}


async def test_a_signed_url_redirects_to_the_bucket_which_answers_as_the_api_would(
    s3_api: httpx.AsyncClient, s3_context: ProcessContext, moto_server: MotoServer
) -> None:
    done = await _finished(s3_api, s3_context, "redirected@example.com")
    owned = await s3_api.get(f"/v1/tasks/{done['task']['id']}/result", headers=done["headers"])
    assert owned.status_code == 200  # the owner's own route still streams

    redirects = REGISTRY.get_sample_value("pixelfleet_delivery_redirects_total") or 0.0
    signed = await s3_api.get(done["task"]["result"]["url"])  # no credential
    assert signed.status_code == 302
    assert REGISTRY.get_sample_value("pixelfleet_delivery_redirects_total") == redirects + 1
    location = signed.headers["location"]
    assert location.startswith(f"{moto_server.endpoint_url}/")
    assert signed.headers["cache-control"].startswith("private, max-age=")
    # The presigned GET lasts no longer than the signed URL it stands for.
    lifetime = int(parse_qs(urlsplit(location).query)["X-Amz-Expires"][0])
    assert 0 < lifetime <= s3_context.settings.result_url_ttl_seconds + 60

    async with httpx.AsyncClient() as browser:  # follows the redirect with no API in the path
        image = await browser.get(location)
        ranged = await browser.get(location, headers={"Range": "bytes=0-99"})
    assert image.status_code == 200
    assert image.content == owned.content
    # The bucket answers with the result's type, name and caching, not the object's defaults.
    assert image.headers["content-type"] == "image/webp"
    assert image.headers["content-disposition"] == owned.headers["content-disposition"]
    assert image.headers["cache-control"] == signed.headers["cache-control"]
    assert (ranged.status_code, ranged.content) == (206, owned.content[:100])

    head = await s3_api.head(done["task"]["result"]["url"])
    assert (head.status_code, head.headers["location"].split("?")[0]) == (
        302,
        location.split("?")[0],
    )


async def test_a_changed_signed_url_is_refused_before_any_redirect(
    s3_api: httpx.AsyncClient, s3_context: ProcessContext
) -> None:
    done = await _finished(s3_api, s3_context, "tampered-s3@example.com")
    url: str = done["task"]["result"]["url"]
    refused = await s3_api.get(url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB"))
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/result-url-invalid")
    assert "location" not in refused.headers


async def test_with_redirects_off_the_api_streams_the_bytes_itself(
    s3_api: httpx.AsyncClient, s3_context: ProcessContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_context.settings, "result_redirect", False)
    done = await _finished(s3_api, s3_context, "streamed-s3@example.com")
    signed = await s3_api.get(done["task"]["result"]["url"])
    assert signed.status_code == 200
    assert signed.headers["content-type"] == "image/webp"
    assert signed.headers["etag"].startswith('"')
