"""Requests PixelFleet makes to URLs its users name (webhooks, image sources): the guard against
server-side request forgery, in one place.

A URL must be a plain http(s) URL without credentials, and not a literal private address or
`localhost` (`check_url`). Before each request its host is resolved again and refused when ANY
of its addresses is not public; the request then goes to the checked address itself
(`pinned_request`), so a name that resolves differently a moment later (DNS rebinding) cannot
steer it inside the network. Callers send with `outbound_client`: no redirects followed for them
(a caller that follows one checks its target as a new URL), no proxies or .netrc from the
environment, no kept-alive connections (a pinned address may serve several hosts).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

import httpx

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = frozenset({"http", "https"})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, RFC 6052).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UrlRefused(ValueError):
    """A URL PixelFleet will not send a request to; the message says why, without naming any
    address it resolved to (that would tell users about the internal network)."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: IPAddress) -> bool:
    """Whether `address` is a globally routable unicast address. An IPv4-mapped address is the
    IPv4 address inside it; 6to4 and NAT64 addresses must be public outside and inside."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        inner = _embedded_ipv4(address)
        if inner is not None and not is_public_address(inner):
            return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _literal_address(host: str) -> IPAddress | None:
    """The address a host names literally, including the short IPv4 forms (`127.1`,
    `2130706433`, `0x7f.1`) that resolvers accept."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host.isascii() and host.replace(".", "").isalnum():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _is_local_name(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def _host_of(parts: SplitResult) -> str:
    return (parts.hostname or "").rstrip(".").lower()


def check_url(url: str, *, allow_private: bool = False) -> str:
    """The URL, if a request may be sent to it; else `UrlRefused` saying why."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"must be at most {MAX_URL_LENGTH} characters")
    if any(char.isspace() or not char.isprintable() for char in url):
        raise UrlRefused("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number from 0 to 65535)
    except ValueError:
        raise UrlRefused("is not a valid URL") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise UrlRefused("must be an http or https URL")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("must not contain credentials (user:password@)")
    host = _host_of(parts)
    if not host:
        raise UrlRefused("must name a host")
    try:
        httpx.URL(url)  # what the client will parse: an invalid international name fails here
    except httpx.InvalidURL:
        raise UrlRefused("is not a valid URL") from None
    if not allow_private:
        address = _literal_address(host)
        if _is_local_name(host) or (address is not None and not is_public_address(address)):
            raise UrlRefused(
                "must be a public address (private, loopback and local hosts are refused)"
            )
    return url


@dataclass(frozen=True)
class PinnedRequest:
    """Where one request goes: `url` (with the checked address in place of the host name when
    the address is pinned), and the headers and TLS name that keep the original host visible."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    sni_hostname: str | None = None

    @property
    def extensions(self) -> dict[str, str] | None:
        """The httpx request extensions that make TLS verify the original host name."""
        return {"sni_hostname": self.sni_hostname} if self.sni_hostname else None


async def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (raises `OSError` when it does not)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def pinned_request(url: str, *, allow_private: bool) -> PinnedRequest:
    """Where to send a request for `url` (checked with `check_url` first): `UrlRefused` when it
    may not be sent or its host has a non-public address, `OSError` when the host cannot be
    resolved now."""
    check_url(url, allow_private=allow_private)
    if allow_private:
        return PinnedRequest(url)
    parsed = httpx.URL(url)
    host = parsed.raw_host.decode("ascii").rstrip(".")  # international names in IDNA form
    https = parsed.scheme == "https"
    port = parsed.port or (443 if https else 80)
    resolved = [ipaddress.ip_address(a.split("%", 1)[0]) for a in await resolve(host, port)]
    if not resolved:
        raise OSError(f"{host} has no address")
    if not all(is_public_address(address) for address in resolved):
        raise UrlRefused("resolves to a private, loopback or otherwise non-public address")
    return PinnedRequest(
        str(parsed.copy_with(host=str(resolved[0]))),
        headers={"Host": parsed.netloc.decode("ascii")},
        sni_hostname=host if https else None,
    )


def outbound_client(timeout: float) -> httpx.AsyncClient:
    """An HTTP client for requests to users' URLs (see the module's doc)."""
    return httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )
