"""Variants: several outputs from one upload, each priced and each downloadable."""

from __future__ import annotations

import base64
import io
import re

import httpx
from PIL import Image

from pixelfleet.context import ProcessContext
from pixelfleet.credits.pricing import OutputCharge, price_task
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import PROBLEM, balance_of, image_bytes, sign_up, submit

RESPONSIVE = {
    "operations": [{"op": "grayscale"}],
    "variants": [
        {
            "name": "thumb",
            "operations": [{"op": "thumbnail", "width": 100, "height": 100}],
            "output": {"format": "webp"},
        },
        {
            "name": "medium",
            "operations": [{"op": "resize", "width": 400}],
            "output": {"format": "jpeg", "quality": 85},
        },
        {"name": "original", "output": {"format": "png"}},
    ],
}


async def test_each_variant_is_priced_produced_and_downloadable(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "multi@example.com")
    response = await submit(client, headers, RESPONSIVE, image_bytes("JPEG", (800, 600)))
    assert response.status_code == 202, response.text
    task = response.json()
    assert task["cost"] == price_task(
        ["grayscale"],
        [
            OutputCharge("webp", ["thumbnail"]),
            OutputCharge("jpeg", ["resize"]),
            OutputCharge("png"),
        ],
        800 * 600,
    )
    assert await balance_of(client, headers) == 100 - task["cost"]
    assert await drain_queue(ctx) == ["succeeded"]

    done = (await client.get(f"/v1/tasks/{task['id']}", headers=headers)).json()
    shapes = [(o["name"], o["format"], o["width"], o["height"]) for o in done["outputs"]]
    assert shapes == [
        ("thumb", "webp", 100, 75),
        ("medium", "jpeg", 400, 300),
        ("original", "png", 800, 600),
    ]
    assert done["result"]["name"] == "thumb"
    for name, fmt, width, height in shapes:
        result = await client.get(
            f"/v1/tasks/{task['id']}/result", headers=headers, params={"variant": name}
        )
        assert result.status_code == 200
        assert f"-{name}." in result.headers["content-disposition"]
        with Image.open(io.BytesIO(result.content)) as image:
            assert (image.format.lower(), image.size) == (fmt, (width, height))
            red, green, blue = image.convert("RGB").getpixel((width // 2, height // 3))
            assert max(red, green, blue) - min(red, green, blue) <= 3  # the shared grayscale


async def test_an_output_that_asks_for_a_placeholder_carries_it_with_its_dominant_colour(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "placeholders@example.com")
    pipeline = {
        "variants": [
            {"name": "blur", "output": {"format": "jpeg", "placeholder": "blurhash"}},
            {"name": "thumb", "output": {"format": "webp", "placeholder": "thumbhash"}},
            {"name": "plain", "output": {"format": "jpeg"}},
        ]
    }
    response = await submit(client, headers, pipeline, image_bytes("JPEG", (320, 240)))
    assert response.status_code == 202, response.text
    assert await drain_queue(ctx) == ["succeeded"]

    done = (await client.get(f"/v1/tasks/{response.json()['id']}", headers=headers)).json()
    blur, thumb, plain = done["outputs"]
    assert len(blur["placeholder"]) == 28  # 4x3 components: 6 characters + 2 per AC one
    assert len(base64.b64decode(thumb["placeholder"])) >= 5
    assert blur["dominant_color"] == thumb["dominant_color"]
    assert re.fullmatch(r"#[0-9a-f]{6}", blur["dominant_color"])
    assert (plain["placeholder"], plain["dominant_color"]) == (None, None)


async def test_an_unknown_variant_is_a_precise_404(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "which@example.com")
    task_id = (await submit(client, headers, RESPONSIVE)).json()["id"]
    await drain_queue(ctx)
    response = await client.get(
        f"/v1/tasks/{task_id}/result", headers=headers, params={"variant": "huge"}
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/variant-not-found")
    assert "thumb" in response.json()["detail"]


async def test_variant_mistakes_are_refused_before_charging(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "many@example.com")
    both = dict(RESPONSIVE, output={"format": "png"})
    response = await submit(client, headers, both)
    assert response.status_code == 422
    assert any(e["field"].startswith("pipeline.output") for e in response.json()["errors"])
    too_many = {"variants": [{"name": f"v{i}"} for i in range(50)]}
    response = await submit(client, headers, too_many)
    assert response.status_code == 422
    assert "max_variants" in response.text
    twins = {"variants": [{"name": "same"}, {"name": "same"}]}
    assert (await submit(client, headers, twins)).status_code == 422
    bad_width = {
        "variants": [{"name": "a"}, {"name": "b", "operations": [{"op": "resize", "width": -1}]}]
    }
    response = await submit(client, headers, bad_width)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "pipeline.variants.1.operations.0.width"
    assert await balance_of(client, headers) == 100
