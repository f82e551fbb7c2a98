"""Webhook signatures: HMAC-SHA256 over ``"<timestamp>.<body>"``, as Stripe signs its events.

Every webhook request carries ``TagTrail-Signature: t=<unix seconds>,v1=<hex digest>``. The
timestamp is inside the signed bytes, so a receiver that refuses old timestamps also refuses a
replayed request; the digest is compared in constant time. docs/security.md shows a receiver.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "TagTrail-Signature"
DEFAULT_TOLERANCE_S = 300


class SignatureError(Exception):
    """The signature header is missing, malformed, stale or does not match the body."""


def sign(body: bytes, *, secret: str, timestamp: int) -> str:
    """The ``TagTrail-Signature`` header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(
    body: bytes,
    header: str,
    *,
    secret: str,
    now: int,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> int:
    """Check a received signature header against the raw body; the signed timestamp if it
    matches and is within ``tolerance_s`` of ``now``, SignatureError otherwise."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(key, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError) as exc:
        raise SignatureError("no timestamp in the signature header") from exc
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError("the signature's timestamp is outside the tolerance")
    expected = sign(body, secret=secret, timestamp=timestamp).split("v1=", 1)[1]
    # Several v1 values may be sent while a secret is being rotated: any one may match.
    if not any(hmac.compare_digest(expected, given) for given in fields.get("v1", [])):
        raise SignatureError("the signature does not match the body")
    return timestamp
