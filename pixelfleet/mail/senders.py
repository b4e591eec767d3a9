"""The mail port and its adapters: an SMTP server (`PIXELFLEET_SMTP_URL`), or, with none (the
embedded default), an .eml file per message under `<data dir>/mail/`. A sender raises
`MailNotSent` when a message did not go; the outbox tries it again later."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import tempfile
import uuid
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

from pixelfleet.mail.letters import Letter

log = logging.getLogger(__name__)


class MailNotSent(Exception):
    """The message did not go now (the server is away, refused it or timed out)."""


class MailSender(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


def compose(letter: Letter, sender: str, message_id: uuid.UUID, now: datetime) -> EmailMessage:
    """The letter as a MIME message: plain text with an HTML alternative, marked as sent by a
    machine (`Auto-Submitted`), so that vacation replies are not sent back."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = letter.to
    message["Subject"] = letter.subject
    message["Date"] = format_datetime(now)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "pixelfleet.invalid"
    message["Message-ID"] = make_msgid(idstring=message_id.hex, domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(letter.text)
    message.add_alternative(letter.html, subtype="html")
    return message


class FileMailSender:
    """Writes each message as an .eml file (whole or not at all) under `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _write(self, message: EmailMessage) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = str(message["Message-ID"]).strip("<>").partition("@")[0]
        target = self.directory / f"{name}.eml"
        fd, staging = tempfile.mkstemp(dir=self.directory, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as written:
                written.write(message.as_bytes())
            os.replace(staging, target)
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise
        return target

    async def send(self, message: EmailMessage) -> None:
        try:
            path = await asyncio.to_thread(self._write, message)
        except OSError as exc:
            raise MailNotSent(f"could not write the message: {exc}") from exc
        # Its subject and file, not its bodies: they may carry a single-use link.
        log.info("mail to %s written to %s: %s", message["To"], path, message["Subject"])


class SmtpMailSender:
    """Sends through an SMTP server: `smtp://` upgrades with STARTTLS when the server offers
    it, `smtps://` speaks TLS from the start; user and password in the URL log in (AUTH)."""

    def __init__(self, url: str, timeout: float, ca_file: Path | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError("PIXELFLEET_SMTP_URL must look like smtp://user:pass@host:587")
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.implicit_tls else 587)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self.tls_context = ssl.create_default_context()
        if ca_file is not None:
            self.tls_context.load_verify_locations(cafile=str(ca_file))

    async def send(self, message: EmailMessage) -> None:
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.implicit_tls,
                # None: STARTTLS when the server offers it (never after implicit TLS).
                start_tls=False if self.implicit_tls else None,
                tls_context=self.tls_context,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise MailNotSent(f"{self.host}:{self.port}: {exc}") from exc
        log.info(
            "mail to %s sent through %s:%s: %s",
            message["To"],
            self.host,
            self.port,
            message["Subject"],
        )
