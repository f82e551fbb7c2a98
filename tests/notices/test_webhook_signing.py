"""Webhook signatures: what is signed verifies; any changed byte, another secret, a stale or
missing timestamp does not; and no header, however malformed, makes ``verify`` raise anything
but SignatureError."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.notifications.signing import SignatureError, sign, verify

SECRET = "k" * 43
NOW = 1_796_000_000


@given(body=st.binary(max_size=2000), skew=st.integers(-300, 300))
def test_what_is_signed_verifies(body: bytes, skew: int) -> None:
    header = sign(body, secret=SECRET, timestamp=NOW + skew)
    assert verify(body, header, secret=SECRET, now=NOW) == NOW + skew


@given(body=st.binary(min_size=1, max_size=500), index=st.integers(0, 499), bit=st.integers(0, 7))
def test_a_flipped_bit_is_refused(body: bytes, index: int, bit: int) -> None:
    header = sign(body, secret=SECRET, timestamp=NOW)
    i = index % len(body)
    changed = body[:i] + bytes([body[i] ^ (1 << bit)]) + body[i + 1 :]
    with pytest.raises(SignatureError, match="does not match"):
        verify(changed, header, secret=SECRET, now=NOW)


def test_another_secret_a_stale_timestamp_and_a_replayed_timestamp_are_refused() -> None:
    body = b'{"id":"notice_1"}'
    with pytest.raises(SignatureError, match="does not match"):
        verify(body, sign(body, secret=SECRET, timestamp=NOW), secret="x" * 43, now=NOW)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(body, sign(body, secret=SECRET, timestamp=NOW - 301), secret=SECRET, now=NOW)
    # The timestamp is signed: moving it to look fresh breaks the signature.
    old = sign(body, secret=SECRET, timestamp=NOW - 3600)
    fresh = old.replace(f"t={NOW - 3600}", f"t={NOW}")
    with pytest.raises(SignatureError, match="does not match"):
        verify(body, fresh, secret=SECRET, now=NOW)


def test_a_known_vector() -> None:
    """Computed independently: printf '1796000000.{}' | openssl dgst -sha256 -hmac kkk...k"""
    assert sign(b"{}", secret=SECRET, timestamp=NOW) == (f"t={NOW},v1=" + _openssl_vector())


def _openssl_vector() -> str:
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", SECRET],
        input=f"{NOW}.{{}}".encode(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    return out.strip().rsplit(" ", 1)[-1]


@given(header=st.text(max_size=200))
def test_any_header_is_verified_or_refused_cleanly(header: str) -> None:
    try:
        verify(b"{}", header, secret=SECRET, now=NOW)
    except SignatureError:
        return
    raise AssertionError("a random header verified")
