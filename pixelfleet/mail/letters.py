"""The messages PixelFleet mails, each in plain text and HTML: transactional, at most one link
each, nothing to unsubscribe from. They know nothing of how they are sent."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

# The kinds of letter (what the outbox records of each).
PASSWORD_RESET = "password_reset"  # noqa: S105
EMAIL_VERIFICATION = "email_verification"
PASSWORD_CHANGED = "password_changed"  # noqa: S105
KINDS = (PASSWORD_RESET, EMAIL_VERIFICATION, PASSWORD_CHANGED)


@dataclass(frozen=True)
class Letter:
    kind: str
    to: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class _Link:
    label: str
    url: str


def _letter(
    kind: str, to: str, subject: str, before: list[str], link: _Link | None, after: list[str]
) -> Letter:
    """The letter's paragraphs, its link (shown whole, for mail readers that hide links), then
    the closing paragraphs; the same words in both bodies."""
    text_parts = [*before, *([link.url] if link else []), *after]
    html_parts = [f"<p>{escape(paragraph)}</p>" for paragraph in before]
    if link is not None:
        html_parts.append(f'<p><a href="{escape(link.url)}">{escape(link.label)}</a></p>')
        html_parts.append(f"<p>{escape(link.url)}</p>")
    html_parts += [f"<p>{escape(paragraph)}</p>" for paragraph in after]
    head = f'<head><meta charset="utf-8"><title>{escape(subject)}</title></head>'
    body = "\n".join(html_parts)
    html = f'<!doctype html>\n<html lang="en">\n{head}\n<body>\n{body}\n</body>\n</html>\n'
    return Letter(kind, to, subject, "\n\n".join(text_parts) + "\n", html)


def password_reset(product: str, to: str, link: str, minutes: int) -> Letter:
    return _letter(
        PASSWORD_RESET,
        to,
        f"Reset your {product} password",
        [
            f"Someone asked to reset the password of your {product} account ({to}).",
            f"To choose a new password, open this link within {minutes} minutes. It works once.",
        ],
        _Link("Choose a new password", link),
        ["If you did not ask for this, ignore this message: your password stays as it is."],
    )


def email_verification(product: str, to: str, link: str) -> Letter:
    return _letter(
        EMAIL_VERIFICATION,
        to,
        f"Confirm your email for {product}",
        [f"Welcome to {product}. Open this link to confirm that {to} is your address:"],
        _Link("Confirm my email", link),
        ["If you did not sign up, ignore this message."],
    )


def password_changed(product: str, to: str) -> Letter:
    return _letter(
        PASSWORD_CHANGED,
        to,
        f"Your {product} password was changed",
        [
            f"The password of your {product} account ({to}) was just changed, and every "
            "other login of the account was ended.",
            "If this was not you, reset your password at once and look over your API keys.",
        ],
        None,
        [],
    )
