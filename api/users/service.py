"""Login and account management."""

from __future__ import annotations

from datetime import datetime

import psycopg

from api.config import ApiConfig
from api.deps import Keys
from api.errors import ConflictError, TooManyRequestsError, UnauthorizedError
from api.security import (
    LoginLimiter,
    hash_password,
    issue_token,
    needs_rehash,
    verify_password,
)
from api.users.schemas import TokenOut, UserOut
from track_engine.db import accounts, audit
from track_engine.errors import NotFoundError


def login(
    conn: psycopg.Connection,
    *,
    config: ApiConfig,
    keys: Keys,
    limiter: LoginLimiter,
    username: str,
    password: str,
    client: str,
    now: datetime,
) -> TokenOut:
    """Check the password and issue a token; failures are rate-limited per user and address."""
    wait_s = limiter.retry_after_s(username, client)
    if wait_s:
        raise TooManyRequestsError(
            f"too many failed logins; try again in {wait_s} s", retry_after_s=wait_s
        )
    user = accounts.user_by_name(conn, username)
    if not verify_password(user.password_hash if user else None, password) or user is None:
        limiter.failed(username, client)
        raise UnauthorizedError("wrong username or password")
    if user.disabled:
        raise UnauthorizedError("this account is disabled")
    limiter.succeeded(username, client)
    if needs_rehash(user.password_hash):
        accounts.set_password_hash(
            conn, user_id=user.user_id, password_hash=hash_password(password)
        )
    audit.append(conn, actor=user.username, role=user.role, action="auth.login", remote_addr=client)
    token = issue_token(
        secret=keys.jwt_secret,
        user_id=user.user_id,
        username=user.username,
        role=user.role,
        ttl_s=config.token_ttl_s,
        now=now,
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
    audit.append(
        conn,
        actor=actor,
        role=actor_role,
        action="user.create",
        subject=f"user:{user.user_id}",
        remote_addr=remote_addr,
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
    audit.append(
        conn,
        actor=actor,
        role=actor_role,
        action="user.disable" if disabled else "user.enable",
        subject=f"user:{user_id}",
        remote_addr=remote_addr,
    )
    user = accounts.user_by_id(conn, user_id)
    assert user is not None
    return user
