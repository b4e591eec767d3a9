"""No endpoint that takes an id lets one user see or touch another's things: every such
operation the OpenAPI document lists is tried by Bob on Alice's task, result, asset, preset and
API key,
and answers 404 (a preset name is per user, so Bob's PUT makes his own). The administration's
routes, which take Alice's account id, answer Bob 403 `admin-required` and change nothing. A new
id-taking route fails this test until it says which of Alice's things to try it on."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from tests.api_helpers import PROBLEM, image_bytes, sign_up, submit

PIPELINE = {"operations": [{"op": "resize", "width": 32}], "output": {"format": "png"}}
BOBS = {"operations": [{"op": "grayscale"}], "output": {"format": "webp"}}


async def test_bob_gets_404_for_everything_of_alices(client: httpx.AsyncClient) -> None:
    alice = await sign_up(client, "alice@example.com")
    bob = await sign_up(client, "bob@example.com")
    task = (await submit(client, alice, PIPELINE, image_bytes("PNG", (64, 64)))).json()
    asset = await client.post(
        "/v1/assets", headers=alice, files={"file": ("mark.png", image_bytes("PNG", (16, 16)))}
    )
    assert asset.status_code == 201, asset.text
    preset = await client.post(
        "/v1/presets", headers=alice, json={"name": "alices-look", "pipeline": PIPELINE}
    )
    assert preset.status_code == 201, preset.text
    key = await client.post(
        "/v1/me/api-keys", headers=alice, json={"name": "ci", "scopes": ["tasks:read"]}
    )
    assert key.status_code == 201, key.text
    upload = await client.post(
        "/v1/uploads", headers=alice, json={"content_type": "image/png", "bytes": 100}
    )
    assert upload.status_code == 201, upload.text
    alices_id = (await client.get("/v1/me", headers=alice)).json()["id"]
    ids = {
        "user_id": alices_id,
        "task_id": task["id"],
        "asset_id": asset.json()["id"],
        "name": "alices-look",
        "key_id": key.json()["id"],
        "upload_id": upload.json()["id"],
    }

    paths: dict[str, dict[str, Any]] = (await client.get("/openapi.json")).json()["paths"]
    tried: list[str] = []
    bobs_own: list[str] = []
    for path, operations in sorted(paths.items()):
        params = re.findall(r"{(\w+)}", path)
        if not params:
            continue
        if path in {"/v1/uploads/{upload_id}/content", "/v1/results/{token}", "/v1/images/{token}"}:
            continue  # its credential is its URL's token: tests/sources/test_direct_uploads.py,
            # tests/jobs/test_result_urls.py and tests/derivatives/test_image_urls.py
        url = path.format(**{param: ids[param] for param in params})
        for method in sorted(operations, key=lambda m: m == "put"):  # Bob's PUT last
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            body = {"json": {"pipeline": BOBS}} if method in {"put", "patch"} else {}
            answer = await client.request(method.upper(), url, headers=bob, **body)
            tried.append(f"{method.upper()} {path}")
            if method == "put" and path == "/v1/presets/{name}":
                assert answer.status_code == 201, answer.text  # his own, under the same name
                bobs_own.append(path)
                continue
            expected, problem = (
                (403, "/admin-required") if path.startswith("/v1/admin/") else (404, "")
            )
            assert answer.status_code == expected, (method, path, answer.status_code, answer.text)
            assert answer.headers["content-type"] == PROBLEM
            assert answer.json()["type"].endswith(problem)
            assert "alice@example.com" not in answer.text  # nothing of hers leaks

    assert {
        "GET /v1/tasks/{task_id}",
        "DELETE /v1/tasks/{task_id}",
        "GET /v1/tasks/{task_id}/result",
        "GET /v1/assets/{asset_id}",
        "DELETE /v1/assets/{asset_id}",
        "GET /v1/uploads/{upload_id}",
        "GET /v1/presets/{name}",
        "DELETE /v1/presets/{name}",
        "GET /v1/me/api-keys/{key_id}",
        "DELETE /v1/me/api-keys/{key_id}",
        "GET /v1/admin/users/{user_id}",
        "POST /v1/admin/users/{user_id}/deactivate",
        "POST /v1/admin/users/{user_id}/credits",
    } <= set(tried)

    # Alice's things are as she left them, her account too.
    account = (await client.get("/v1/me", headers=alice)).json()
    assert account["is_active"] is True
    assert account["balance"] == 100 - task["cost"]
    mine = (await client.get(f"/v1/tasks/{task['id']}", headers=alice)).json()
    assert mine["status"] != "cancelled"
    assert (await client.get(f"/v1/assets/{ids['asset_id']}", headers=alice)).status_code == 200
    kept = (await client.get("/v1/presets/alices-look", headers=alice)).json()
    assert json.dumps(kept["pipeline"], sort_keys=True) == json.dumps(
        preset.json()["pipeline"], sort_keys=True
    )
    his = (await client.get("/v1/presets/alices-look", headers=bob)).json()
    assert his["pipeline"]["output"]["format"] == "webp"
    assert kept["pipeline"]["output"]["format"] == "png"
    assert bobs_own == ["/v1/presets/{name}"]
    still = (await client.get(f"/v1/me/api-keys/{ids['key_id']}", headers=alice)).json()
    assert still["revoked_at"] is None
    alices_key = {"Authorization": f"Bearer {key.json()['key']}"}
    assert (await client.get("/v1/tasks", headers=alices_key)).status_code == 200
