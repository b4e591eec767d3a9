"""An account holding something of every kind, for the export and erasure tests: what a user
makes through the API (a task that ran and one queued, an idempotency key, a preset, an
asset, an API key, a direct upload, a derivative being made, logins, a password reset link
and its mail) and what the platform writes for them (a payment, a webhook delivery)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

from pixelfleet.context import ProcessContext
from pixelfleet.jobs.processing import process_task
from pixelfleet.models import Payment, PaymentEvent, WebhookDelivery
from tests.admin.steps import id_of, log_in
from tests.api_helpers import image_bytes, sign_up, submit


@dataclass(frozen=True)
class Holdings:
    """An account and what it holds, as its owner knows them."""

    email: str
    user_id: uuid.UUID
    headers: dict[str, str]
    refresh_token: str
    api_key: str
    api_key_id: str
    task_ids: list[str]
    preset: str
    asset_id: str
    upload_id: str
    payment_id: uuid.UUID
    delivery_id: uuid.UUID


async def an_account_holding_everything(
    client: httpx.AsyncClient, ctx: ProcessContext, email: str
) -> Holdings:
    headers = await sign_up(client, email)
    user_id = uuid.UUID(await id_of(client, headers))
    refresh_token = (await log_in(client, email))["refresh_token"]
    tasks = [
        await submit(
            client,
            headers,
            {"operations": [{"op": "grayscale"}]},
            extra_headers={"Idempotency-Key": f"first-{email}"},
        ),
        await submit(client, headers, {"operations": [{"op": "flip"}]}),
    ]
    assert all(task.status_code == 202 for task in tasks), [task.text for task in tasks]
    # The first one runs (it has an output); the second stays queued.
    ran = await process_task(ctx, uuid.UUID(tasks[0].json()["id"]), "holdings-worker")
    assert ran == "succeeded", ran
    preset = await client.put(
        "/v1/presets/avatar", headers=headers, json={"pipeline": {"operations": [{"op": "flip"}]}}
    )
    assert preset.status_code in (200, 201), preset.text
    asset = await client.post(
        "/v1/assets",
        headers=headers,
        files={"file": ("logo.jpg", image_bytes("JPEG", (64, 32)), "image/jpeg")},
    )
    assert asset.status_code == 201, asset.text
    key = await client.post(
        "/v1/me/api-keys", headers=headers, json={"name": "build", "scopes": ["tasks:read"]}
    )
    assert key.status_code == 201, key.text
    upload = await client.post(
        "/v1/uploads", headers=headers, json={"content_type": "image/png", "bytes": 100}
    )
    assert upload.status_code == 201, upload.text
    image_url = await client.post(
        "/v1/image-urls",
        headers=headers,
        json={"source": {"asset": asset.json()["id"]}, "preset": "avatar"},
    )
    assert image_url.status_code == 201, image_url.text
    derive_timeout = ctx.settings.derive_timeout_seconds
    ctx.settings.derive_timeout_seconds = 0.01  # no worker runs here: it stays being made
    assert (await client.get(image_url.json()["url"])).status_code == 503
    ctx.settings.derive_timeout_seconds = derive_timeout
    reset = await client.post("/v1/auth/password-reset", json={"email": email})
    assert reset.status_code == 202, reset.text
    payment = Payment(
        user_id=user_id,
        pack_id="starter",
        credits=500,
        amount=49_900,
        currency="INR",
        order_id=f"order_{uuid.uuid4().hex[:14]}",
    )
    delivery = WebhookDelivery(
        task_id=uuid.UUID(tasks[0].json()["id"]),
        event="task.succeeded",
        url="https://hooks.example.com/pixelfleet",
        payload={"task": tasks[0].json()["id"]},
    )
    # Razorpay's webhook of that payment, as it comes: it names the payer.
    event = PaymentEvent(
        id=f"evt_{uuid.uuid4().hex[:14]}",
        event="payment.captured",
        order_id=payment.order_id,
        payload={
            "payload": {
                "payment": {
                    "entity": {
                        "id": f"pay_{uuid.uuid4().hex[:14]}",
                        "order_id": payment.order_id,
                        "amount": 49_900,
                        "status": "captured",
                        "email": email,
                        "contact": "+919000090000",
                        "vpa": "payer@exampleupi",
                    }
                }
            }
        },
    )
    async with ctx.sessions.begin() as session:
        session.add_all([payment, delivery, event])
    return Holdings(
        email=email,
        user_id=user_id,
        headers=headers,
        refresh_token=refresh_token,
        api_key=key.json()["key"],
        api_key_id=key.json()["id"],
        task_ids=[task.json()["id"] for task in tasks],
        preset="avatar",
        asset_id=asset.json()["id"],
        upload_id=upload.json()["id"],
        payment_id=payment.id,
        delivery_id=delivery.id,
    )
