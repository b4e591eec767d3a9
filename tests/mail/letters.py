"""What a test reads of the mail a server sent: the .eml files of the embedded default, and the
token of a mailed link."""

from __future__ import annotations

import email
import email.policy
import re
import time
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pixelfleet.context import ProcessContext

LINK = re.compile(r"https?://\S+")


async def mailed(ctx: ProcessContext) -> list[EmailMessage]:
    """Every message written under the data directory, oldest first, once the sends this
    process started in the background are done."""
    await ctx.mail.settle()
    return mailed_under(ctx.settings.data_dir)


def mailed_under(data_dir: Path) -> list[EmailMessage]:
    """Every message written under a data directory (`<data dir>/mail/`), oldest first."""
    files = sorted((data_dir / "mail").glob("*.eml"), key=lambda path: path.stat().st_mtime_ns)
    return [_parsed(path) for path in files]


def wait_for_mail(data_dir: Path, to: str, about: str, timeout: float = 10.0) -> EmailMessage:
    """The newest message to `to` whose subject holds `about`, that another process writes
    under `data_dir`, once it is there (a message is written whole or not at all)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [
            message
            for message in mailed_under(data_dir)
            if message["To"] == to and about in str(message["Subject"])
        ]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no mail to {to} about {about!r} within {timeout} s")


def _parsed(path: Path) -> EmailMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def html_of(message: EmailMessage) -> str:
    body = message.get_body(("html",))
    assert body is not None
    return str(body.get_content())


def link_in(message: EmailMessage) -> str:
    [link] = set(LINK.findall(text_of(message)))
    return link


def token_in(message: EmailMessage) -> str:
    [token] = parse_qs(urlsplit(link_in(message)).query)["token"]
    return token
