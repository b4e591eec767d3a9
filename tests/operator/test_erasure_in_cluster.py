"""In kubernetes mode, erasing an account (`DELETE /v1/me`) cancels its queued work and
deletes the ImageJob of each of its tasks once the erasure is committed: with its task gone,
nothing else would ever delete it (the operator's resync reads the task). Another account's
ImageJobs stay."""

from __future__ import annotations

import httpx
import pytest

from tests.api_helpers import PASSWORD, image_bytes, sign_up, submit
from tests.harness.kubernetes import EmulatedCluster
from tests.operator.conftest import NAMESPACE

pytestmark = pytest.mark.operator

QUICK = {"operations": [{"op": "grayscale"}], "output": {"format": "png"}}


async def test_an_erased_accounts_imagejobs_are_deleted_and_no_one_elses(
    client: httpx.AsyncClient, cluster: EmulatedCluster
) -> None:
    leaving = await sign_up(client, "leaving@example.com")
    staying = await sign_up(client, "staying@example.com")
    image = image_bytes(size=(40, 30))
    theirs = [(await submit(client, leaving, QUICK, image)).json()["id"] for _ in range(2)]
    kept = (await submit(client, staying, QUICK, image)).json()["id"]
    for task_id in (*theirs, kept):
        assert cluster.get("imagejobs", NAMESPACE, f"task-{task_id}") is not None

    erased = await client.request(
        "DELETE", "/v1/me", headers=leaving, json={"password": PASSWORD}
    )
    assert erased.status_code == 202, erased.text
    assert erased.json()["tasks_cancelled"] == 2

    for task_id in theirs:
        assert cluster.get("imagejobs", NAMESPACE, f"task-{task_id}") is None
    assert cluster.get("imagejobs", NAMESPACE, f"task-{kept}") is not None
