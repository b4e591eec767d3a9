"""What `GET /v1/usage` refuses: a range it cannot read (or at the calendar's ends), a
backwards or over-long one, an unknown grouping (each a 422 problem naming the field), and an
API key without `credits:read` (403, as the ledger)."""

from __future__ import annotations

import httpx
import pytest

from tests.api_helpers import PROBLEM, sign_up


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "last week"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-12-07", "to": "2026-12-06"}, "from"),
        ({"from": "2025-01-01", "to": "2026-12-07"}, "from"),
        ({"group_by": "week"}, "group_by"),
        # The calendar's ends: a day more or a month less would not be a date.
        ({"to": "9999-12-31"}, "to"),
        ({"to": "0001-01-01"}, "to"),
        ({"from": "0001-01-01T00:00:00+05:00", "to": "2026-12-07"}, "from"),
    ],
)
async def test_a_range_or_grouping_it_cannot_use_is_a_problem_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    headers = await sign_up(client, "ann@example.com")

    response = await client.get("/v1/usage", headers=headers, params=params)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_a_range_of_date_times_counts_from_one_instant_to_another(
    client: httpx.AsyncClient,
) -> None:
    headers = await sign_up(client, "ann@example.com")

    response = await client.get(
        "/v1/usage",
        headers=headers,
        params={"from": "2026-12-01T12:00:00Z", "to": "2026-12-03T00:00:00+00:00"},
    )

    assert response.status_code == 200, response.text
    assert [bucket["key"] for bucket in response.json()["buckets"]] == [
        "2026-12-01",
        "2026-12-02",
    ]


async def test_an_api_key_needs_credits_read(client: httpx.AsyncClient) -> None:
    headers = await sign_up(client, "ann@example.com")
    created = await client.post(
        "/v1/me/api-keys", headers=headers, json={"name": "ci", "scopes": ["tasks:write"]}
    )
    key = {"Authorization": f"Bearer {created.json()['key']}"}

    refused = await client.get("/v1/usage", headers=key)

    assert refused.status_code == 403, refused.text
    assert "credits:read" in refused.json()["detail"]
