"""Presets: named pipelines a user saves and submits as `{"preset": NAME}`."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pixelfleet.context import ProcessContext
from pixelfleet.worker.embedded import drain_queue
from tests.api_helpers import PROBLEM, assert_quota_exceeded, image_bytes, sign_up, submit

AVATAR = {
    "operations": [{"op": "thumbnail", "width": 96, "height": 96}],
    "output": {"format": "png"},
}


async def test_a_saved_preset_runs_like_the_pipeline_it_names(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    headers = await sign_up(client, "pre@example.com")
    created = await client.post(
        "/v1/presets", json={"name": "avatar", "pipeline": AVATAR}, headers=headers
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/presets/avatar"
    assert created.json()["pipeline"]["operations"][0]["op"] == "thumbnail"

    task = await submit(client, headers, {"preset": "avatar"}, image_bytes("JPEG", (640, 480)))
    assert task.status_code == 202, task.text
    await drain_queue(ctx)
    done = (await client.get(f"/v1/tasks/{task.json()['id']}", headers=headers)).json()
    assert (done["result"]["format"], done["result"]["width"], done["result"]["height"]) == (
        "png",
        96,
        72,
    )


async def test_presets_are_listed_read_replaced_and_deleted(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "list@example.com")
    for name in ["c-one", "a-two", "b-three"]:
        response = await client.put(
            f"/v1/presets/{name}", json={"pipeline": AVATAR}, headers=headers
        )
        assert response.status_code == 201
    names: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = (await client.get("/v1/presets", headers=headers, params=params)).json()
        names += [item["name"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert names == ["a-two", "b-three", "c-one"]

    replaced = await client.put(
        "/v1/presets/a-two",
        json={"pipeline": {"operations": [{"op": "grayscale"}]}},
        headers=headers,
    )
    assert replaced.status_code == 200
    fetched = (await client.get("/v1/presets/a-two", headers=headers)).json()
    assert fetched["pipeline"]["operations"] == [{"op": "grayscale"}]

    assert (await client.delete("/v1/presets/a-two", headers=headers)).status_code == 204
    gone = await client.get("/v1/presets/a-two", headers=headers)
    assert gone.status_code == 404
    assert gone.json()["type"].endswith("/preset-not-found")


async def test_preset_mistakes_are_refused_precisely(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "oops@example.com")
    await client.post("/v1/presets", json={"name": "avatar", "pipeline": AVATAR}, headers=headers)
    duplicate = await client.post(
        "/v1/presets", json={"name": "avatar", "pipeline": AVATAR}, headers=headers
    )
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == PROBLEM
    bad_name = await client.post(
        "/v1/presets", json={"name": "Not OK!", "pipeline": AVATAR}, headers=headers
    )
    assert bad_name.status_code == 422
    assert [e["field"] for e in bad_name.json()["errors"]] == ["name"]
    bad_pipeline = await client.post(
        "/v1/presets",
        json={"name": "broken", "pipeline": {"operations": [{"op": "resize", "width": 0}]}},
        headers=headers,
    )
    assert bad_pipeline.status_code == 422
    assert bad_pipeline.json()["errors"][0]["field"].startswith("pipeline.operations.0")
    unknown = await submit(client, headers, {"preset": "nope"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "pipeline.preset"
    mixed = await submit(client, headers, {"preset": "avatar", "output": {"format": "png"}})
    assert mixed.status_code == 422
    assert mixed.json()["errors"][0]["field"] == "pipeline.preset"


async def test_another_users_presets_are_invisible(client: httpx.AsyncClient) -> None:
    owner = await sign_up(client, "owner@example.com")
    other = await sign_up(client, "other@example.com")
    await client.post("/v1/presets", json={"name": "mine", "pipeline": AVATAR}, headers=owner)
    assert (await client.get("/v1/presets/mine", headers=other)).status_code == 404
    assert (await client.delete("/v1/presets/mine", headers=other)).status_code == 404
    assert (await client.get("/v1/presets", headers=other)).json()["items"] == []
    refused = await submit(client, other, {"preset": "mine"})
    assert refused.status_code == 422
    # The same name is free for the other user.
    own = await client.post("/v1/presets", json={"name": "mine", "pipeline": AVATAR}, headers=other)
    assert own.status_code == 201


async def _names(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    page = (await client.get("/v1/presets", headers=headers)).json()
    return [item["name"] for item in page["items"]]


async def test_an_account_at_its_preset_quota_replaces_but_adds_no_more(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    ctx.settings.max_presets_per_user = 2
    headers = await sign_up(client, "collector@example.com")
    for name in ("one", "two"):
        made = await client.post(
            "/v1/presets", json={"name": name, "pipeline": AVATAR}, headers=headers
        )
        assert made.status_code == 201

    posted = await client.post(
        "/v1/presets", json={"name": "three", "pipeline": AVATAR}, headers=headers
    )
    assert_quota_exceeded(posted, "max_presets_per_user", status=403, limit=2, usage=2)
    put = await client.put("/v1/presets/three", json={"pipeline": AVATAR}, headers=headers)
    assert_quota_exceeded(put, "max_presets_per_user", status=403, limit=2, usage=2)
    assert await _names(client, headers) == ["one", "two"]

    grey = {"operations": [{"op": "grayscale"}]}
    replaced = await client.put("/v1/presets/two", json={"pipeline": grey}, headers=headers)
    assert replaced.status_code == 200  # replacing takes no more room
    assert (await client.delete("/v1/presets/one", headers=headers)).status_code == 204
    assert (
        await client.put("/v1/presets/three", json={"pipeline": AVATAR}, headers=headers)
    ).status_code == 201
    assert await _names(client, headers) == ["three", "two"]


@pytest.mark.both_backends
async def test_concurrent_preset_writes_never_pass_the_quota(
    client: httpx.AsyncClient, ctx: ProcessContext
) -> None:
    ctx.settings.max_presets_per_user = 3
    headers = await sign_up(client, "racing-presets@example.com")

    async def save(index: int) -> httpx.Response:
        if index % 2:
            return await client.put(
                f"/v1/presets/p{index}", json={"pipeline": AVATAR}, headers=headers
            )
        return await client.post(
            "/v1/presets", json={"name": f"p{index}", "pipeline": AVATAR}, headers=headers
        )

    answers = await asyncio.gather(*(save(index) for index in range(8)))
    assert sorted(answer.status_code for answer in answers) == [201] * 3 + [403] * 5
    made = sorted(f"p{i}" for i, answer in enumerate(answers) if answer.status_code == 201)
    assert await _names(client, headers) == made
