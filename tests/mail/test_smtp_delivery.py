"""Mail goes through a real SMTP server: in plain text with an HTML alternative, from
`PIXELFLEET_MAIL_FROM`; over STARTTLS or TLS from the start, logging in when the URL holds
credentials. A letter the server does not take (it is down, refuses the login, or shows a
certificate nobody trusts) stays in the outbox and goes once the server is back; past
`PIXELFLEET_MAIL_MAX_ATTEMPTS` it is given up. Nothing is lost and nothing is sent twice."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import select, update

from pixelfleet.api.app import create_app
from pixelfleet.bootstrap import create_context
from pixelfleet.context import ProcessContext
from pixelfleet.db import utcnow
from pixelfleet.jobs.pipeline_processes import PipelineProcesses
from pixelfleet.mail.outbox import send_due_mail
from pixelfleet.models import OutboundMail
from pixelfleet.settings import Settings
from tests.api_helpers import sign_up
from tests.harness.ports import free_port
from tests.harness.smtp import Mailbox, self_signed_certificate, smtp_server
from tests.mail.letters import token_in

SENDER = "Acme Images <images@acme.example>"


@dataclass
class Platform:
    ctx: ProcessContext
    client: httpx.AsyncClient


@asynccontextmanager
async def platform(
    settings: Settings, pipeline_processes: PipelineProcesses, **changes: Any
) -> AsyncIterator[Platform]:
    """The API on a context whose settings have `changes` (an SMTP server, say)."""
    if "smtp_url" in changes:
        changes["smtp_url"] = SecretStr(changes["smtp_url"])
    changed = settings.model_copy(update={"mail_from": SENDER, **changes})
    ctx = create_context(changed, pipelines=pipeline_processes)
    transport = httpx.ASGITransport(app=create_app(ctx=ctx))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
            yield Platform(ctx, http)
    finally:
        await ctx.close()


async def _ask_for_reset(client: httpx.AsyncClient, email: str) -> None:
    await sign_up(client, email)
    asked = await client.post("/v1/auth/password-reset", json={"email": email})
    assert asked.status_code == 202, asked.text


async def _outbox(ctx: ProcessContext, to: str | None = None) -> list[OutboundMail]:
    """The outbox's letters (to `to` only, when given), once this process's sends are done."""
    await ctx.mail.settle()
    statement = select(OutboundMail)
    if to is not None:
        statement = statement.where(OutboundMail.to_address == to)
    async with ctx.read_sessions() as session:
        return list((await session.scalars(statement)).all())


async def _make_due(ctx: ProcessContext) -> None:
    async with ctx.sessions.begin() as session:
        await session.execute(
            update(OutboundMail)
            .where(OutboundMail.state == "pending")
            .values(next_attempt_at=utcnow())
        )


def _count(outcome: str) -> float:
    labels = {"kind": "password_reset", "outcome": outcome}
    return REGISTRY.get_sample_value("pixelfleet_mail_attempts_total", labels) or 0.0


async def test_a_letter_goes_through_the_server_as_text_with_an_html_alternative(
    settings: Settings, pipeline_processes: PipelineProcesses
) -> None:
    with smtp_server() as server:
        async with platform(
            settings, pipeline_processes, smtp_url=server.url(), public_url="https://img.example"
        ) as running:
            await _ask_for_reset(running.client, "smtp-reader@example.com")
            [row] = await _outbox(running.ctx)
            [message] = server.mailbox.wait_for(1)

    assert message["From"] == SENDER
    assert message["To"] == "smtp-reader@example.com"
    assert message["Message-ID"].endswith("@acme.example>")
    assert message["Date"] is not None
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert token_in(message)  # the link to reset with
    # Sent: its bodies, which held a single-use link, are not kept.
    assert (row.state, row.attempts, row.text_body, row.html_body) == ("sent", 1, None, None)


async def test_starttls_with_a_login_and_tls_from_the_start_both_deliver(
    settings: Settings, pipeline_processes: PipelineProcesses, tmp_path: Path
) -> None:
    certificate = self_signed_certificate(tmp_path / "tls")
    with (
        smtp_server(starttls=certificate, login=("mailer", "s3cret p@ss")) as upgraded,
        smtp_server(implicit_tls=certificate) as wrapped,
    ):
        for url in (
            upgraded.url("smtp", "mailer:s3cret%20p%40ss@"),
            wrapped.url("smtps"),
        ):
            async with platform(
                settings, pipeline_processes, smtp_url=url, smtp_ca_file=certificate.cert_file
            ) as running:
                email = f"tls-{uuid.uuid4().hex[:6]}@example.com"
                await _ask_for_reset(running.client, email)
                [row] = await _outbox(running.ctx, email)
                assert row.state == "sent", row.last_error
        assert len(upgraded.mailbox.wait_for(1)) == len(wrapped.mailbox.wait_for(1)) == 1


async def test_a_refused_login_or_an_untrusted_certificate_keeps_the_letter_for_later(
    settings: Settings, pipeline_processes: PipelineProcesses, tmp_path: Path
) -> None:
    certificate = self_signed_certificate(tmp_path / "tls")
    with smtp_server(starttls=certificate, login=("mailer", "right")) as server:
        refusals = {
            "wrong password": {
                "smtp_url": server.url("smtp", "mailer:wrong@"),
                "smtp_ca_file": certificate.cert_file,
            },
            "untrusted certificate": {"smtp_url": server.url("smtp", "mailer:right@")},
        }
        for why, changes in refusals.items():
            # A refused login is answered slowly (the client tries each way to log in).
            async with platform(
                settings, pipeline_processes, smtp_timeout_seconds=2, **changes
            ) as running:
                email = f"kept-{uuid.uuid4().hex[:6]}@example.com"
                await _ask_for_reset(running.client, email)
                [row] = await _outbox(running.ctx, email)
                assert (row.state, row.attempts) == ("pending", 1), why
                assert row.last_error, why
                assert row.next_attempt_at is not None
                assert row.next_attempt_at > utcnow(), why  # retried later, with backoff
        assert server.mailbox.messages == []


async def test_an_outage_of_the_server_delays_a_letter_and_loses_it_not(
    settings: Settings, pipeline_processes: PipelineProcesses
) -> None:
    port = free_port()  # nothing listens there yet
    retrying, sent = _count("retrying"), _count("sent")
    async with platform(
        settings, pipeline_processes, smtp_url=f"smtp://127.0.0.1:{port}"
    ) as running:
        await _ask_for_reset(running.client, "patient@example.com")
        [row] = await _outbox(running.ctx)
        assert (row.state, row.attempts) == ("pending", 1)
        # A sweep before the retry is due sends nothing.
        assert await send_due_mail(running.ctx) == 0

        mailbox = Mailbox()
        with smtp_server(port=port, mailbox=mailbox):
            await _make_due(running.ctx)
            assert await send_due_mail(running.ctx) == 1
            assert await send_due_mail(running.ctx) == 0  # nothing twice
            [message] = mailbox.wait_for(1)
        [row] = await _outbox(running.ctx)

    assert message["To"] == "patient@example.com"
    assert (row.state, row.attempts) == ("sent", 2)
    assert (_count("retrying") - retrying, _count("sent") - sent) == (1, 1)


async def test_a_letter_is_given_up_after_its_last_attempt(
    settings: Settings, pipeline_processes: PipelineProcesses
) -> None:
    failed = _count("failed")
    async with platform(
        settings,
        pipeline_processes,
        smtp_url=f"smtp://127.0.0.1:{free_port()}",
        mail_max_attempts=2,
    ) as running:
        await _ask_for_reset(running.client, "unreachable@example.com")
        await _outbox(running.ctx)
        await _make_due(running.ctx)
        assert await send_due_mail(running.ctx) == 1
        [row] = await _outbox(running.ctx)
        await _make_due(running.ctx)
        assert await send_due_mail(running.ctx) == 0  # given up: never due again

    assert (row.state, row.attempts, row.text_body, row.html_body) == ("failed", 2, None, None)
    assert _count("failed") - failed == 1


async def test_a_sweep_stops_at_the_first_letter_that_does_not_go(
    settings: Settings, pipeline_processes: PipelineProcesses
) -> None:
    """A server that is away now is away for the rest of the sweep: the sweep does not wait
    out a timeout per letter while the upkeep it shares a loop with waits behind it."""
    async with platform(
        settings, pipeline_processes, smtp_url=f"smtp://127.0.0.1:{free_port()}"
    ) as running:
        for email in ("first@example.com", "second@example.com", "third@example.com"):
            await _ask_for_reset(running.client, email)
        assert len(await _outbox(running.ctx)) == 3
        await _make_due(running.ctx)
        assert await send_due_mail(running.ctx) == 1
        attempts = sorted(row.attempts for row in await _outbox(running.ctx))

    assert attempts == [1, 1, 2]
