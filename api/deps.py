"""Typed FastAPI dependencies shared by the domain views: the connection (one transaction per
request, committed before the response is sent), the road network, the keys, and who calls.

Every endpoint declares who may call it with one of the role aliases below (``OfficerDep``,
``StaffDep``...), built by :func:`require`; the role × endpoint test reads the declared roles
back from each route's dependencies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Path, Request
from fastapi.security import OAuth2PasswordBearer
from psycopg_pool import ConnectionPool

from api.config import ApiConfig
from api.errors import ForbiddenError, UnauthorizedError
from api.network.service import NetworkCache
from api.security import IdCipher, InvalidTokenError, LoginLimiter, read_token
from track_engine.db import accounts

ALL_ROLES = frozenset(accounts.ROLES)
_oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


@dataclass(frozen=True, slots=True)
class Keys:
    """The process's secrets, resolved once in create_app."""

    jwt_secret: bytes
    id_hash_key: bytes
    id_cipher: IdCipher


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: who, in which role, from where."""

    user_id: int
    username: str
    role: str
    owner_id: int | None
    remote_addr: str


# The dependencies that only read the app's state are ``async``: FastAPI runs a plain ``def``
# dependency in a worker thread, a hop (and GIL hand-over) per dependency per request.


async def _pool(request: Request) -> ConnectionPool:
    pool: ConnectionPool = request.app.state.pool
    return pool


def get_conn(pool: Annotated[ConnectionPool, Depends(_pool)]) -> Iterator[psycopg.Connection]:
    """A pooled connection; its transaction commits when the view returns without error."""
    with pool.connection() as conn:
        yield conn


async def get_network(request: Request) -> NetworkCache:
    """The road network cache (loaded on first use, reloaded when the active network changes)."""
    cache: NetworkCache = request.app.state.network
    return cache


async def get_config(request: Request) -> ApiConfig:
    """The API's configuration."""
    config: ApiConfig = request.app.state.config
    return config


async def get_keys(request: Request) -> Keys:
    """The process's secrets."""
    keys: Keys = request.app.state.keys
    return keys


async def get_limiter(request: Request) -> LoginLimiter:
    """The login rate limiter."""
    limiter: LoginLimiter = request.app.state.login_limiter
    return limiter


async def client_address(request: Request) -> str:
    """The caller's address as the server sees it (recorded in the audit log)."""
    return request.client.host if request.client else ""


# scope="function": commit (or roll back) before the response leaves, so a client never sees
# success for a write that did not commit, and a long stream does not hold a connection.
ConnDep = Annotated[psycopg.Connection, Depends(get_conn, scope="function")]
PoolDep = Annotated[ConnectionPool, Depends(_pool)]
NetworkDep = Annotated[NetworkCache, Depends(get_network)]
ConfigDep = Annotated[ApiConfig, Depends(get_config)]
KeysDep = Annotated[Keys, Depends(get_keys)]
LimiterDep = Annotated[LoginLimiter, Depends(get_limiter)]
ClientDep = Annotated[str, Depends(client_address)]


def current_principal(
    conn: ConnDep,
    keys: KeysDep,
    client: ClientDep,
    token: Annotated[str | None, Depends(_oauth2)],
) -> Principal:
    """The caller of a valid bearer token whose account still exists and is enabled.

    The account is re-read on every request, so a disabled account or a changed role takes
    effect at once rather than when the token expires.
    """
    if not token:
        raise UnauthorizedError("log in first: send 'Authorization: Bearer <token>'")
    try:
        claims = read_token(token, secret=keys.jwt_secret)
    except InvalidTokenError as exc:
        raise UnauthorizedError("the bearer token is invalid or has expired") from exc
    if claims.expires_at <= datetime.now(UTC):
        raise UnauthorizedError("the bearer token has expired")
    user = accounts.user_by_id(conn, claims.user_id)
    if user is None or user.disabled:
        raise UnauthorizedError("this account no longer exists or is disabled")
    return Principal(user.user_id, user.username, user.role, user.owner_id, client)


def require(*roles: str) -> Any:
    """A dependency admitting only callers in ``roles`` (401 without a token, 403 otherwise)."""
    allowed = frozenset(roles)
    unknown = allowed - ALL_ROLES
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            raise ForbiddenError(
                f"a {principal.role} may not do this; allowed: {', '.join(sorted(allowed))}"
            )
        return principal

    dependency.allowed_roles = allowed  # type: ignore[attr-defined]
    return Depends(dependency)


def allowed_roles_of(call: Callable[..., Any]) -> frozenset[str] | None:
    """The roles a dependency created by :func:`require` admits (None for other callables)."""
    roles = getattr(call, "allowed_roles", None)
    return roles if isinstance(roles, frozenset) else None


AnyUserDep = Annotated[Principal, require(*ALL_ROLES)]
AdminDep = Annotated[Principal, require("admin")]
OfficerDep = Annotated[Principal, require("officer")]
RegistryDep = Annotated[Principal, require("admin", "registrar")]
SearchDep = Annotated[Principal, require("admin", "officer", "registrar")]
BikeViewerDep = Annotated[Principal, require("admin", "officer", "registrar", "resident")]
ResidentDep = Annotated[Principal, require("resident")]
ReporterDep = Annotated[Principal, require("officer", "resident")]
DutyDeskDep = Annotated[Principal, require("admin", "officer")]
AuditorDep = Annotated[Principal, require("auditor", "admin")]
OperatorDep = Annotated[Principal, require("admin", "officer")]
SupervisorDep = Annotated[Principal, require("auditor", "admin")]

MAX_ID = 9_223_372_036_854_775_807
IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="numeric id", examples=[1])]
