"""What a test reads of the mail a server sent: the .eml files of the embedded default, and the
token of a mailed link."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pixelfleet.context import ProcessContext

LINK = re.compile(r"https?://\S+")


async def mailed(ctx: ProcessContext) -> list[EmailMessage]:
    """Every message written under the data directory, oldest first, once the sends this
    process started in the background are done."""
    await ctx.mail.settle()
    folder = ctx.settings.data_dir / "mail"
    files = sorted(folder.glob("*.eml"), key=lambda path: path.stat().st_mtime_ns)
    return [_parsed(path) for path in files]


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
