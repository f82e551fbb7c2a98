"""Login and account management."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import psycopg
from psycopg_pool import ConnectionPool

from api.config import ApiConfig
from api.deps import Keys
from api.errors import BadRequestError, ConflictError, TooManyRequestsError, UnauthorizedError
from api.login_gate import BUSY_DETAIL
from api.registry import audit
from api.security import (
    HashGate,
    LoginLimiter,
    hash_password,
    issue_token,
    needs_rehash,
    verify_password,
)
from api.users import store as accounts
from api.users.schemas import TokenOut, UserOut
from track_engine.errors import NotFoundError


def refuse_if_limited(limiter: LoginLimiter, username: str, client: str) -> None:
    """TooManyRequestsError while this username or address has failed too often."""
    wait_s = limiter.retry_after_s(username, client)
    if wait_s:
        raise TooManyRequestsError(
            f"too many failed logins; try again in {wait_s} s", retry_after_s=wait_s
        )


def take_hash_slot(gate: HashGate) -> None:
    """Take one of the process's password-hash slots (``gate.leave()`` gives it back);
    TooManyRequestsError if none is free."""
    if not gate.try_enter():
        raise TooManyRequestsError(BUSY_DETAIL, retry_after_s=1)


@contextmanager
def hash_slot(gate: HashGate) -> Iterator[None]:
    """Hold one of the process's password-hash slots; TooManyRequestsError if none is free."""
    take_hash_slot(gate)
    try:
        yield
    finally:
        gate.leave()


def login(
    pool: ConnectionPool,
    *,
    config: ApiConfig,
    keys: Keys,
    limiter: LoginLimiter,
    username: str,
    password: str,
    client: str,
    now: datetime,
) -> TokenOut:
    """Check the password and issue a token; every failure is counted and audited.

    Takes the pool, not a connection: the account is read, and the outcome written, each in a
    short transaction of its own, and argon2 (tens of milliseconds, 64 MiB) runs between them
    holding no connection. The caller holds a hash slot (:func:`take_hash_slot`).
    """
    with pool.connection() as conn:
        user = accounts.user_by_name(conn, username)
    matches = verify_password(user.password_hash if user else None, password)
    if user is None or not matches or user.disabled:
        if not matches:
            limiter.failed(username, client)
        reason = "unknown-user" if user is None else "wrong-password" if not matches else "disabled"
        with pool.connection() as conn:
            audit.record(
                conn,
                audit.Caller(username, user.role if user else "", client),
                "auth.login_failed",
                detail={"reason": reason},
            )
        if reason == "disabled":
            raise UnauthorizedError("this account is disabled")
        raise UnauthorizedError("wrong username or password")
    limiter.succeeded(username, client)
    upgraded = hash_password(password) if needs_rehash(user.password_hash) else None
    with pool.connection() as conn:
        if upgraded:
            accounts.set_password_hash(conn, user_id=user.user_id, password_hash=upgraded)
        audit.record(conn, audit.Caller(user.username, user.role, client), "auth.login")
    return _token_out(user, version=user.token_version, config=config, keys=keys, now=now)


def change_own_password(
    conn: psycopg.Connection,
    *,
    config: ApiConfig,
    keys: Keys,
    limiter: LoginLimiter,
    gate: HashGate,
    user_id: int,
    current_password: str,
    new_password: str,
    client: str,
    now: datetime,
) -> TokenOut | None:
    """Change the caller's password (the current one proves it is them); every token issued
    before, the one used here included, stops working; returns a fresh one.

    None if the current password is wrong: counted as a failed login and audited, which the
    caller commits before refusing (:class:`WrongCurrentPasswordError`).
    """
    user = accounts.user_by_id(conn, user_id)
    if user is None:
        raise NotFoundError(f"no user {user_id}")
    refuse_if_limited(limiter, user.username, client)
    with hash_slot(gate):
        if not verify_password(user.password_hash, current_password):
            limiter.failed(user.username, client)
            audit.record(
                conn,
                audit.Caller(user.username, user.role, client),
                "auth.login_failed",
                subject=f"user:{user_id}",
                detail={"reason": "wrong-password", "during": "password change"},
            )
            return None
        new_hash = hash_password(new_password)
    accounts.change_password(conn, user_id=user_id, password_hash=new_hash)
    audit.record(
        conn,
        audit.Caller(user.username, user.role, client),
        "user.password_change",
        subject=f"user:{user_id}",
    )
    # The change bumped the account's token version: the fresh token carries the new one.
    return _token_out(user, version=user.token_version + 1, config=config, keys=keys, now=now)


class WrongCurrentPasswordError(BadRequestError):
    """The current password given with a password change is wrong."""

    code = "wrong-password"


def reset_password(
    conn: psycopg.Connection,
    *,
    gate: HashGate,
    user_id: int,
    new_password: str,
    actor: str,
    actor_role: str,
    remote_addr: str,
) -> None:
    """Set an account's password (an admin's reset); every token it had stops working."""
    with hash_slot(gate):
        new_hash = hash_password(new_password)
    if not accounts.change_password(conn, user_id=user_id, password_hash=new_hash):
        raise NotFoundError(f"no user {user_id}")
    audit.record(
        conn,
        audit.Caller(actor, actor_role, remote_addr),
        "user.password_reset",
        subject=f"user:{user_id}",
    )


def _token_out(
    user: accounts.UserRecord, *, version: int, config: ApiConfig, keys: Keys, now: datetime
) -> TokenOut:
    """A bearer token for ``user`` at token ``version`` (older versions are revoked)."""
    token = issue_token(
        secret=keys.jwt_secret,
        user_id=user.user_id,
        username=user.username,
        role=user.role,
        ttl_s=config.token_ttl_s,
        now=now,
        version=version,
    )
    return TokenOut(access_token=token, expires_in=config.token_ttl_s, role=user.role)


def to_out(user: accounts.UserRecord) -> UserOut:
    """Response model of an account."""
    return UserOut(
        user_id=user.user_id,
        username=user.username,
        role=user.role,
        owner_id=user.owner_id,
        disabled=user.disabled,
        created_at=user.created_at,
    )


def create_user(
    conn: psycopg.Connection,
    *,
    username: str,
    password: str,
    role: str,
    actor: str,
    actor_role: str,
    remote_addr: str = "",
) -> accounts.UserRecord:
    """Create an account (hashing the password); ConflictError if the username is taken."""
    if role not in accounts.ROLES:
        raise ConflictError(f"unknown role {role!r}", code="unknown-role")
    user = accounts.create_user(
        conn, username=username, password_hash=hash_password(password), role=role
    )
    if user is None:
        raise ConflictError(f"the username {username!r} is taken", code="username-taken")
    audit.record(
        conn,
        audit.Caller(actor, actor_role, remote_addr),
        "user.create",
        subject=f"user:{user.user_id}",
        detail={"username": username, "role": role},
    )
    return user


def set_disabled(
    conn: psycopg.Connection,
    *,
    user_id: int,
    disabled: bool,
    actor: str,
    actor_role: str,
    remote_addr: str,
) -> accounts.UserRecord:
    """Disable or re-enable an account (it takes effect on the next request)."""
    if not accounts.set_disabled(conn, user_id=user_id, disabled=disabled):
        raise NotFoundError(f"no user {user_id}")
    audit.record(
        conn,
        audit.Caller(actor, actor_role, remote_addr),
        "user.disable" if disabled else "user.enable",
        subject=f"user:{user_id}",
    )
    user = accounts.user_by_id(conn, user_id)
    if user is None:
        raise RuntimeError("set_disabled: the account just updated is gone")
    return user


def link_resident(conn: psycopg.Connection, *, user_id: int, owner_id: int) -> None:
    """Make a resident account the owner's, so it sees the owner's bikes (an account of any
    other role, or none, is left alone)."""
    user = accounts.user_by_id(conn, user_id)
    if user is not None and user.role == "resident":
        accounts.link_owner(conn, user_id=user.user_id, owner_id=owner_id)
