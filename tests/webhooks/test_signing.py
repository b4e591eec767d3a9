"""The signature receivers check: HMAC-SHA256 over `<t>.<body>` with the user's secret."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from pathlib import Path

from pixelfleet.settings import Settings
from pixelfleet.webhooks.signing import signature_header, user_signing_secret, verify_signature

BODY = b'{"type":"task.succeeded"}'


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, jwt_secret="j" * 40, **values)  # type: ignore[arg-type]


def test_a_signature_is_an_hmac_a_receiver_can_compute_itself() -> None:
    header = signature_header("whsec_abc", BODY, timestamp=1_700_000_000)
    expected = hmac.new(b"whsec_abc", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify_signature("whsec_abc", header, BODY, now=1_700_000_100)


def test_a_changed_body_a_wrong_secret_or_an_old_timestamp_fail() -> None:
    now = time.time()
    header = signature_header("whsec_abc", BODY)
    assert verify_signature("whsec_abc", header, BODY)
    assert not verify_signature("whsec_abc", header, BODY + b" ")
    assert not verify_signature("whsec_abd", header, BODY)
    assert not verify_signature("whsec_abc", header, BODY, now=now + 301)
    assert verify_signature("whsec_abc", header, BODY, tolerance=600, now=now + 301)


def test_malformed_headers_do_not_verify() -> None:
    good = signature_header("s", BODY)
    stamp, mac = good.split(",")
    for header in ("", "t=abc,v1=00", stamp, mac, f"{stamp},v1=", "garbage", f"{stamp},v0={mac}"):
        assert not verify_signature("s", header, BODY), header


def test_any_of_several_v1_signatures_may_match() -> None:
    good = signature_header("s", BODY)
    stamp, mac = good.split(",")
    assert verify_signature("s", f"{stamp},v1=deadbeef,{mac}", BODY)


def test_each_user_has_a_secret_of_their_own_derived_from_the_server_key(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    ann, ben = uuid.uuid4(), uuid.uuid4()
    assert user_signing_secret(settings, ann) == user_signing_secret(settings, ann)
    assert user_signing_secret(settings, ann) != user_signing_secret(settings, ben)
    assert user_signing_secret(settings, ann).startswith("whsec_")
    # Not the JWT key, nor the HMAC of the id under it: the derivation is domain-separated.
    plain = hmac.new(b"j" * 40, str(ann).encode(), hashlib.sha256).hexdigest()
    assert plain not in user_signing_secret(settings, ann)


def test_a_dedicated_webhook_secret_replaces_the_derived_server_key(tmp_path: Path) -> None:
    user = uuid.uuid4()
    derived = user_signing_secret(_settings(tmp_path), user)
    dedicated = _settings(tmp_path, webhook_secret="w" * 40)
    assert user_signing_secret(dedicated, user) != derived
    other_jwt = Settings(data_dir=tmp_path, jwt_secret="k" * 40, webhook_secret="w" * 40)
    assert user_signing_secret(other_jwt, user) == user_signing_secret(dedicated, user)
