"""Fetching a source image from a URL: real HTTP servers on loopback play the remote hosts (good,
redirected, slow, huge, not an image, forbidden); nothing forbidden is contacted."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from pixelfleet import outbound
from pixelfleet.imaging.errors import UnsupportedImage
from pixelfleet.outbound import outbound_client
from pixelfleet.sources.errors import SourceRefused, SourceTooLarge, SourceUnreachable
from pixelfleet.sources.fetch import MAX_REDIRECTS, fetch_source
from pixelfleet.storage import LocalStorage, StagedObject
from tests.api_helpers import image_bytes
from tests.harness.image_host import Answer, ImageHost, image_host

IMAGE = image_bytes("JPEG", (320, 240))
LIMIT = 1_000_000
WITHIN = 5.0
PUBLIC_NAME = "images.example.com"


@pytest.fixture
def host() -> Iterator[ImageHost]:
    with image_host() as serving:
        yield serving


@pytest.fixture
def staged(tmp_path: Path) -> Iterator[StagedObject]:
    staged = LocalStorage(tmp_path).stage()
    yield staged
    staged.discard()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with outbound_client(WITHIN) as http:
        yield http


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    staged: StagedObject,
    *,
    allow_private: bool = True,
    limit: int = LIMIT,
    within: float = WITHIN,
) -> int:
    return await fetch_source(
        client, url, staged, limit=limit, within=within, allow_private=allow_private
    )


async def test_an_image_is_fetched_into_the_staged_object(
    client: httpx.AsyncClient, host: ImageHost, staged: StagedObject
) -> None:
    url = host.serve("/photo.jpg", Answer(body=IMAGE, headers={"Content-Type": "image/jpeg"}))
    assert await fetch(client, url, staged) == len(IMAGE)
    assert staged.read() == IMAGE


async def test_redirects_are_followed_up_to_the_limit_and_no_further(
    client: httpx.AsyncClient, host: ImageHost, staged: StagedObject
) -> None:
    host.serve("/photo.jpg", Answer(body=IMAGE))
    for hop in range(MAX_REDIRECTS + 1):
        target = "/photo.jpg" if hop == 0 else f"/hop{hop - 1}"
        host.serve(f"/hop{hop}", Answer(302, headers={"Location": target}))
    assert await fetch(client, host.url(f"/hop{MAX_REDIRECTS - 1}"), staged) == len(IMAGE)
    with pytest.raises(SourceUnreachable, match=f"more than {MAX_REDIRECTS} times"):
        await fetch(client, host.url(f"/hop{MAX_REDIRECTS}"), staged)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param(Answer(404, b"gone"), "answered HTTP 404", id="not-found"),
        pytest.param(Answer(500, b"oops"), "answered HTTP 500", id="server-error"),
        pytest.param(Answer(302), "without a Location", id="redirect-nowhere"),
    ],
)
async def test_an_answer_that_is_not_an_image_is_unreachable(
    client: httpx.AsyncClient,
    host: ImageHost,
    staged: StagedObject,
    answer: Answer,
    message: str,
) -> None:
    url = host.serve("/x", answer)
    with pytest.raises(SourceUnreachable, match=message):
        await fetch(client, url, staged)


async def test_a_host_that_is_not_there_is_unreachable(
    client: httpx.AsyncClient, staged: StagedObject
) -> None:
    with image_host() as gone:
        url = gone.url("/photo.jpg")
    with pytest.raises(SourceUnreachable, match="could not be fetched"):
        await fetch(client, url, staged)


async def test_a_body_that_is_not_an_image_is_not_read_past_its_start(
    client: httpx.AsyncClient, host: ImageHost, staged: StagedObject
) -> None:
    url = host.serve("/page", Answer(body=b"<html>" + b"x" * 500_000))
    with pytest.raises(UnsupportedImage):
        await fetch(client, url, staged)
    assert len(staged.read()) < 64 * 1024


async def test_a_source_over_the_limit_is_refused_by_its_length_or_as_it_arrives(
    client: httpx.AsyncClient, host: ImageHost, staged: StagedObject
) -> None:
    big = IMAGE + b"\0" * 200_000
    declared = host.serve("/declared", Answer(body=big))
    with pytest.raises(SourceTooLarge, match="larger than 100000 bytes"):
        await fetch(client, declared, staged, limit=100_000)
    # A length that understates the body: what arrives is counted all the same.
    understated = host.serve("/understated", Answer(body=big, declared_length=len(big)))
    with pytest.raises(SourceTooLarge):
        await fetch(client, understated, staged, limit=len(big) - 1)
    assert len(staged.read()) <= len(big) - 1


async def test_a_source_that_trickles_in_is_cut_off_at_the_fetch_timeout(
    client: httpx.AsyncClient, host: ImageHost, staged: StagedObject
) -> None:
    # Every piece comes well within any per-read timeout; the whole never comes in time.
    url = host.serve("/slow.jpg", Answer(body=IMAGE, trickle_seconds=0.05))
    with pytest.raises(SourceUnreachable, match=r"within 0\.3 seconds"):
        await fetch(client, url, staged, within=0.3)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/photo.jpg",
        "http://localhost/photo.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/photo.jpg",
        "http://10.0.0.7/photo.jpg",
        "http://2130706433/photo.jpg",
        "ftp://images.example.com/photo.jpg",
        "http://user:secret@images.example.com/photo.jpg",
    ],
)
async def test_a_forbidden_url_is_refused_without_a_request(
    client: httpx.AsyncClient, staged: StagedObject, url: str
) -> None:
    with pytest.raises(SourceRefused) as refused:
        await fetch(client, url, staged, allow_private=False)
    assert [error.field for error in refused.value.errors] == ["source.url"]


@pytest.fixture
def public_name(host: ImageHost, monkeypatch: pytest.MonkeyPatch) -> str:
    """A public host name for `host`: it resolves to the host's loopback address, which stands
    in for a public one here (every other non-public address stays refused)."""
    stand_in = ipaddress.ip_address("127.0.0.1")
    checked = outbound.is_public_address

    async def resolve(name: str, port: int) -> list[str]:
        return ["127.0.0.1"] if name == PUBLIC_NAME else ["10.9.8.7"]

    monkeypatch.setattr(outbound, "resolve", resolve)
    monkeypatch.setattr(
        outbound, "is_public_address", lambda address: address == stand_in or checked(address)
    )
    return f"http://{PUBLIC_NAME}:{host.port}"


async def test_a_public_name_is_fetched_from_the_address_that_was_checked(
    client: httpx.AsyncClient, host: ImageHost, staged: StagedObject, public_name: str
) -> None:
    host.serve("/photo.jpg", Answer(body=IMAGE))
    assert await fetch(client, f"{public_name}/photo.jpg", staged, allow_private=False) > 0


async def test_a_redirect_to_a_forbidden_host_is_refused_before_it_is_contacted(
    client: httpx.AsyncClient, host: ImageHost, staged: StagedObject, public_name: str
) -> None:
    with image_host("127.0.0.2") as inside:
        inside.serve("/secret", Answer(body=IMAGE))
        for path, target in {
            "/to-literal": inside.url("/secret"),
            "/to-localhost": f"http://localhost:{inside.port}/secret",
            "/to-private-name": f"http://intranet.example.com:{inside.port}/secret",
        }.items():
            host.serve(path, Answer(302, headers={"Location": target}))
            with pytest.raises(SourceRefused):
                await fetch(client, public_name + path, staged, allow_private=False)
        assert inside.requests == []
