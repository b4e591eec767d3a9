"""Which callback URLs are accepted, and which addresses count as public."""

from __future__ import annotations

import ipaddress

import pytest

from pixelfleet import outbound
from pixelfleet.errors import InvalidInput
from pixelfleet.outbound import is_public_address
from pixelfleet.webhooks.targets import (
    TargetRefused,
    check_callback_url,
    delivery_target,
)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/pixelfleet",
        "http://example.com:8080/a/b?c=d",
        "HTTPS://Example.COM/x",
        "https://93.184.215.14/hook",
        "https://[2606:4700:4700::1111]/hook",
        "https://bücher.example/hook",
    ],
)
def test_public_http_urls_are_accepted(url: str) -> None:
    assert check_callback_url(url) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://user@example.com/", "credentials"),
        ("https:///path", "host"),
        ("https://example.com/" + "x" * 2048, "2048"),
        ("https://example.com/\nHost: evil", "control"),
        ("https://[::1/", "valid URL"),
        ("https://example.com:70000/", "valid URL"),
        ("http://localhost./hook", "public"),
        ("http://[fe80::1%25eth0]/", "public"),
        ("http://0x7f.1/", "public"),
        ("http://100.64.0.1/", "public"),
        ("https://☃.example/", "valid URL"),
    ],
)
def test_bad_callback_urls_name_the_field_and_the_reason(url: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_callback_url(url)
    [error] = refused.value.errors
    assert error.field == "callback_url"
    assert message in error.message


def test_private_literals_pass_when_private_targets_are_allowed() -> None:
    url = "http://127.0.0.1:9000/hook"
    assert check_callback_url(url, allow_private_targets=True) == url
    with pytest.raises(InvalidInput):
        check_callback_url("ftp://127.0.0.1/", allow_private_targets=True)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
        "2001:db8::1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1"]
)
def test_public_addresses(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


async def test_an_https_target_is_pinned_with_its_name_for_host_and_tls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        assert (host, port) == ("hooks.example.com", 443)
        return ["2606:4700:4700::1111", "1.1.1.1"]

    monkeypatch.setattr(outbound, "resolve", resolve)
    target = await delivery_target("https://Hooks.Example.com/in?a=1", allow_private_targets=False)
    assert target.url == "https://[2606:4700:4700::1111]/in?a=1"
    assert target.headers == {"Host": "hooks.example.com"}
    assert target.sni_hostname == "hooks.example.com"


async def test_an_international_name_is_resolved_and_sent_in_its_idna_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def resolve(host: str, port: int) -> list[str]:
        assert (host, port) == ("xn--bcher-kva.example", 8443)
        return ["1.1.1.1"]

    monkeypatch.setattr(outbound, "resolve", resolve)
    target = await delivery_target("https://bücher.example:8443/x", allow_private_targets=False)
    assert target.url == "https://1.1.1.1:8443/x"
    assert target.headers == {"Host": "xn--bcher-kva.example:8443"}
    assert target.sni_hostname == "xn--bcher-kva.example"


async def test_a_target_that_became_invalid_is_refused_not_retried() -> None:
    with pytest.raises(TargetRefused):
        await delivery_target("http://127.0.0.1/", allow_private_targets=False)
