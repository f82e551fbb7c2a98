"""Credentials and secrets: argon2 password hashes, signed bearer tokens, login rate limits,
and encryption of national ID numbers (AES-GCM) with the GB 11643 checksum."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_ALGORITHM = "HS256"
_ID_AAD = b"tagtrail:owners.id_number"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

_hasher = PasswordHasher()
# Verifying against this when the username is unknown keeps both paths equally slow.
_DUMMY_HASH = _hasher.hash("tagtrail-no-such-user")


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if the password matches; constant work whether or not the account exists."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True if the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a valid bearer token says."""

    user_id: int
    username: str
    role: str
    expires_at: datetime


class InvalidTokenError(Exception):
    """The token is malformed, forged or expired."""


def issue_token(
    *, secret: bytes, user_id: int, username: str, role: str, ttl_s: int, now: datetime
) -> str:
    """A signed HS256 token for the user, valid ``ttl_s`` seconds from ``now``."""
    payload: dict[str, Any] = {
        "sub": str(user_id),
        "name": username,
        "role": role,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
    }
    return jwt.encode(payload, secret, algorithm=_ALGORITHM)


def read_token(token: str, *, secret: bytes) -> TokenClaims:
    """The claims of a valid token; InvalidTokenError otherwise."""
    try:
        payload = jwt.decode(
            token, secret, algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]}
        )
        return TokenClaims(
            user_id=int(payload["sub"]),
            username=str(payload.get("name", "")),
            role=str(payload.get("role", "")),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
        )
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise InvalidTokenError(str(exc)) from exc


class LoginLimiter:
    """Failed logins per (username, client address) in a sliding window, in this process.

    One API process is the deployment unit here; behind several workers each keeps its own
    count, which still bounds guessing to ``max_failures`` × workers per window.
    """

    def __init__(self, *, max_failures: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after_s(self, username: str, client: str) -> int:
        """Seconds until another attempt is allowed (0 = allowed now)."""
        now = time.monotonic()
        with self._lock:
            recent = self._recent((username.lower(), client), now)
            if len(recent) < self.max_failures:
                return 0
            return max(1, int(recent[0] + self.window_s - now) + 1)

    def failed(self, username: str, client: str) -> None:
        """Count a failed attempt."""
        key = (username.lower(), client)
        with self._lock:
            self._recent(key, time.monotonic()).append(time.monotonic())

    def succeeded(self, username: str, client: str) -> None:
        """Forget the failures of a user who got in."""
        with self._lock:
            self._failures.pop((username.lower(), client), None)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        recent = self._failures.setdefault(key, deque())
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        return recent


def id_number_valid(id_number: str) -> bool:
    """True for an 18-character national ID number whose GB 11643-1999 check character fits."""
    if len(id_number) != 18 or not id_number[:17].isdigit() or not id_number[:17].isascii():
        return False
    total = sum(int(d) * w for d, w in zip(id_number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == id_number[17].upper()


def mask_id_number(tail: str) -> str:
    """How an ID number is shown: 14 stars, then the last four characters."""
    return "*" * 14 + tail[-4:]


class IdCipher:
    """AES-GCM encryption of national ID numbers (random 96-bit nonce stored in front)."""

    def __init__(self, key: bytes) -> None:
        # Settings hand over a secret string of 32+ characters; SHA-256 makes it a 256-bit key.
        self._aead = AESGCM(key if len(key) == 32 else hashlib.sha256(key).digest())

    def encrypt(self, id_number: str) -> bytes:
        """nonce || ciphertext of the ID number."""
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, id_number.encode(), _ID_AAD)

    def decrypt(self, blob: bytes) -> str:
        """The ID number back (for an authorised export; never shown in lists)."""
        return self._aead.decrypt(blob[:12], blob[12:], _ID_AAD).decode()
