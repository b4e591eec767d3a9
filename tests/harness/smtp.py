"""A real SMTP server on a loopback port (aiosmtpd), for the mail tests: plain, with STARTTLS,
or TLS from the start, with AUTH when asked; every message it accepts is kept, parsed. Its
certificate is made here, for 127.0.0.1, and written where a test can trust it."""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.harness.ports import free_port


@dataclass
class Mailbox:
    """What the server accepted, in order (the server's thread adds, a test waits)."""

    messages: list[EmailMessage] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(  # aiosmtpd calls it by this name
        self, server: Any, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._changed:
            self.messages.append(parsed)
            self._changed.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """The first `count` messages, once they have come."""
        with self._changed:
            came = self._changed.wait_for(lambda: len(self.messages) >= count, timeout)
        assert came, f"{len(self.messages)} of {count} messages came"
        return self.messages[:count]


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def self_signed_certificate(directory: Path) -> Certificate:
    """A certificate for 127.0.0.1 signed by itself (a client trusts it as its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


@dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox
    controller: Controller

    def url(self, scheme: str = "smtp", credentials: str = "") -> str:
        return f"{scheme}://{credentials}127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.controller.stop()


def _authenticator(user: str, password: str) -> Any:
    def authenticate(
        server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        good = isinstance(data, LoginPassword) and (data.login, data.password) == (
            user.encode(),
            password.encode(),
        )
        return AuthResult(success=good)

    return authenticate


@contextmanager
def smtp_server(
    *,
    port: int | None = None,
    starttls: Certificate | None = None,
    implicit_tls: Certificate | None = None,
    login: tuple[str, str] | None = None,
    mailbox: Mailbox | None = None,
) -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1 (on `port`, or a free one): STARTTLS offered and required
    with `starttls`, TLS from the start with `implicit_tls`, AUTH required with `login`."""
    options: dict[str, Any] = {}
    if starttls is not None:
        options.update(tls_context=starttls.server_context(), require_starttls=True)
    if implicit_tls is not None:
        options.update(ssl_context=implicit_tls.server_context())
    if login is not None:
        options.update(
            authenticator=_authenticator(*login),
            auth_required=True,
            auth_require_tls=starttls is not None or implicit_tls is not None,
        )
    kept = mailbox or Mailbox()
    chosen = port or free_port()
    controller = Controller(kept, hostname="127.0.0.1", port=chosen, **options)
    controller.start()
    try:
        yield SmtpServer(chosen, kept, controller)
    finally:
        controller.stop()
