"""Credentials and secrets: argon2 password hashes and the bound on how many run at once,
signed bearer tokens, login rate limits, and encryption of national ID numbers (AES-GCM) with
the GB 11643 checksum."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
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
    version: int  # the account's token_version when issued; a password change bumps it


class InvalidTokenError(Exception):
    """The token is malformed, forged or expired."""


def issue_token(
    *,
    secret: bytes,
    user_id: int,
    username: str,
    role: str,
    ttl_s: int,
    now: datetime,
    version: int = 0,
) -> str:
    """A signed HS256 token for the user, valid ``ttl_s`` seconds from ``now`` and as long as
    the account's token_version is still ``version`` (0: an account whose password never
    changed)."""
    payload: dict[str, Any] = {
        "sub": str(user_id),
        "ver": version,
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
            token, secret, algorithms=[_ALGORITHM], options={"require": ["exp", "sub", "ver"]}
        )
        return TokenClaims(
            user_id=int(payload["sub"]),
            username=str(payload.get("name", "")),
            role=str(payload.get("role", "")),
            expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
            version=int(payload["ver"]),
        )
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise InvalidTokenError(str(exc)) from exc


class LoginLimiter:
    """Failed logins in a sliding window, in this process, counted three ways.

    - per (username, address): ``max_failures`` — the usual lock-out of one guesser;
    - per address, whatever the username: ``max_failures_per_address`` — one address spraying
      many usernames;
    - per username, whatever the address: ``max_failures_per_user`` — many addresses guessing
      one account.

    ``max_failures_per_address`` < ``max_failures_per_user``: one address can never fail often
    enough to lock an account for its owner logging in from elsewhere (its own count stops it
    first). One API process keeps one limiter; with N workers each counts on its own, which
    still bounds guessing to N times the limits per window.
    """

    def __init__(
        self,
        *,
        max_failures: int,
        window_s: float,
        max_failures_per_address: int,
        max_failures_per_user: int,
    ) -> None:
        self.window_s = window_s
        per_address, per_user = max_failures_per_address, max_failures_per_user
        if per_user <= per_address:
            raise ValueError(
                "max_failures_per_user must exceed max_failures_per_address, or one address "
                "could lock an account out for everyone"
            )
        self._limits = {"pair": max_failures, "address": per_address, "user": per_user}
        self._failures: dict[tuple[str, str, str], deque[float]] = {}
        self._swept_at = time.monotonic()
        self._lock = threading.Lock()

    @staticmethod
    def _keys(username: str, client: str) -> list[tuple[str, str, str]]:
        name = username.lower()
        return [("pair", name, client), ("address", "", client), ("user", name, "")]

    def retry_after_s(self, username: str, client: str) -> int:
        """Seconds until another attempt is allowed (0 = allowed now)."""
        now = time.monotonic()
        wait_s = 0.0
        with self._lock:
            for key in self._keys(username, client):
                recent = self._recent(key, now)
                limit = self._limits[key[0]]
                if len(recent) >= limit:
                    # the oldest failure that keeps the count at the limit must age out first
                    wait_s = max(wait_s, recent[len(recent) - limit] + self.window_s - now)
        return 0 if wait_s <= 0 else max(1, int(wait_s) + 1)

    def failed(self, username: str, client: str) -> None:
        """Count a failed attempt."""
        now = time.monotonic()
        with self._lock:
            if now - self._swept_at > self.window_s:
                self._sweep(now)
            for key in self._keys(username, client):
                self._recent(key, now)
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, username: str, client: str) -> None:
        """Forget this user's failures from this address (the others stand: a success from
        one address says nothing about guesses from others)."""
        with self._lock:
            self._failures.pop(("pair", username.lower(), client), None)

    def _recent(self, key: tuple[str, str, str], now: float) -> deque[float]:
        recent = self._failures.get(key)
        if recent is None:
            return deque()
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        if not recent:
            del self._failures[key]
        return recent

    def _sweep(self, now: float) -> None:
        # keys nobody touched since their last failure aged out would stay forever: a flood of
        # made-up usernames must not grow the table beyond one window's failures
        for key in list(self._failures):
            self._recent(key, now)
        self._swept_at = now


class HashGate:
    """At most ``slots`` password hashes at a time in this process; the rest are refused.

    argon2 takes ~64 MiB and tens of milliseconds of CPU per hash: a login flood queued
    behind a few slots would still hold memory and the caller's request; refused at once
    (429 with Retry-After), it costs the server nothing.
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("at least one hash slot")
        self.slots = slots
        self._busy = 0
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        """Take a slot if one is free; True if taken (then :meth:`leave` must follow)."""
        with self._lock:
            if self._busy >= self.slots:
                return False
            self._busy += 1
            return True

    def leave(self) -> None:
        """Give a slot back."""
        with self._lock:
            self._busy -= 1

    @property
    def full(self) -> bool:
        """True while every slot is taken (a glance, no lock: the login checks again)."""
        return self._busy >= self.slots


# Niceness of the threads that hash passwords: under a login flood the CPU goes to requests
# already let in (an officer's route) before it goes to checking more passwords.
HASH_THREAD_NICENESS = 10


def _lower_thread_priority() -> None:
    # On Linux the nice value is per thread (and argon2's own lane threads inherit it).
    with contextlib.suppress(OSError, AttributeError):  # elsewhere: the process's priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_THREAD_NICENESS)


def hash_executor(slots: int) -> ThreadPoolExecutor:
    """The threads logins hash passwords on: ``slots`` of them, at a lower priority."""
    return ThreadPoolExecutor(
        max_workers=slots, thread_name_prefix="password-hash", initializer=_lower_thread_priority
    )


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
