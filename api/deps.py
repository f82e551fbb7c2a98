"""Typed FastAPI dependencies shared by the domain views: the connection (one transaction per
request, committed before the response is sent), the road network, the keys, and who calls.

Every endpoint declares who may call it with one of the role aliases below (``OfficerDep``,
``StaffDep``...), built by :func:`require`; the role × endpoint test reads the declared roles
back from each route's dependencies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import psycopg
from fastapi import Depends, Path, Request
from fastapi.security import OAuth2PasswordBearer
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from api.config import ApiConfig
from api.errors import ForbiddenError, UnauthorizedError
from api.network.service import NetworkCache
from api.security import (
    HashGate,
    IdCipher,
    InvalidTokenError,
    LoginLimiter,
    TokenClaims,
    read_token,
)
from api.users import store as accounts

ALL_ROLES = frozenset(accounts.ROLES)
T = TypeVar("T")
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


def _app_state(name: str, kind: type[T]) -> Callable[[Request], Coroutine[Any, Any, T]]:
    """A dependency answering what create_app put on ``app.state`` as ``name`` (a ``kind``)."""
    del kind  # the type checker's only

    async def get(request: Request) -> T:
        value: T = getattr(request.app.state, name)
        return value

    get.__name__ = get.__qualname__ = f"get_{name}"
    return get


# What create_app put on app.state, shared by every request: the pool of synchronous
# connections, the road network cache (loaded on first use, reloaded when the active network
# changes), the API's configuration, the process's secrets, the login rate limiter, the bound
# on concurrent password hashes and the threads logins check passwords on
# (:func:`api.security.hash_executor`).
_pool = _app_state("pool", ConnectionPool)
get_network = _app_state("network", NetworkCache)
get_config = _app_state("config", ApiConfig)
get_keys = _app_state("keys", Keys)
get_limiter = _app_state("login_limiter", LoginLimiter)
get_hash_gate = _app_state("hash_gate", HashGate)
get_hash_executor = _app_state("hash_executor", Executor)


def get_conn(pool: Annotated[ConnectionPool, Depends(_pool)]) -> Iterator[psycopg.Connection]:
    """A pooled connection; its transaction commits when the view returns without error."""
    with pool.connection() as conn:
        yield conn


async def get_lookup_conn(request: Request) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An asyncio connection from the lookup pool (route, last seen, next readers: views that
    run on the event loop); its transaction commits when the view returns without error."""
    pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = request.app.state.lookup_pool
    async with pool.connection() as conn:
        yield conn


async def client_address(request: Request) -> str:
    """The caller's address (recorded in the audit log, counted by the login limits): the TCP
    peer's, or what a configured trusted proxy forwarded (``ApiConfig.trusted_proxies``)."""
    return request.client.host if request.client else ""


# scope="function": commit (or roll back) before the response leaves, so a client never sees
# success for a write that did not commit, and a long stream does not hold a connection.
ConnDep = Annotated[psycopg.Connection, Depends(get_conn, scope="function")]
LookupConnDep = Annotated[psycopg.AsyncConnection[Any], Depends(get_lookup_conn, scope="function")]
PoolDep = Annotated[ConnectionPool, Depends(_pool)]
NetworkDep = Annotated[NetworkCache, Depends(get_network)]
ConfigDep = Annotated[ApiConfig, Depends(get_config)]
KeysDep = Annotated[Keys, Depends(get_keys)]
LimiterDep = Annotated[LoginLimiter, Depends(get_limiter)]
HashGateDep = Annotated[HashGate, Depends(get_hash_gate)]
HashExecutorDep = Annotated[Executor, Depends(get_hash_executor)]
ClientDep = Annotated[str, Depends(client_address)]


def current_principal(
    conn: ConnDep,
    keys: KeysDep,
    client: ClientDep,
    token: Annotated[str | None, Depends(_oauth2)],
) -> Principal:
    """The caller of a valid bearer token whose account still exists and is enabled.

    The account is re-read on every request, so a disabled account, a changed role or a
    changed password (which revokes the tokens issued before it) takes effect at once rather
    than when the token expires.
    """
    claims = _claims(token, keys)
    return _principal(accounts.user_by_id(conn, claims.user_id), claims, client)


async def current_principal_async(
    conn: LookupConnDep,
    keys: KeysDep,
    client: ClientDep,
    token: Annotated[str | None, Depends(_oauth2)],
) -> Principal:
    """:func:`current_principal` for the views on the event loop: the same checks, the account
    re-read on the request's asyncio connection (in its transaction, before anything else)."""
    claims = _claims(token, keys)
    return _principal(await accounts.user_by_id_async(conn, claims.user_id), claims, client)


def _claims(token: str | None, keys: Keys) -> TokenClaims:
    if not token:
        raise UnauthorizedError("log in first: send 'Authorization: Bearer <token>'")
    try:
        claims = read_token(token, secret=keys.jwt_secret)
    except InvalidTokenError as exc:
        raise UnauthorizedError("the bearer token is invalid or has expired") from exc
    if claims.expires_at <= datetime.now(UTC):
        raise UnauthorizedError("the bearer token has expired")
    return claims


def _principal(user: accounts.UserRecord | None, claims: TokenClaims, client: str) -> Principal:
    if user is None or user.disabled:
        raise UnauthorizedError("this account no longer exists or is disabled")
    if claims.version != user.token_version:
        raise UnauthorizedError("the password changed since this token was issued; log in again")
    return Principal(user.user_id, user.username, user.role, user.owner_id, client)


def require(*roles: str, on_event_loop: bool = False) -> Any:
    """A dependency admitting only callers in ``roles`` (401 without a token, 403 otherwise).

    ``on_event_loop``: for ``async`` views that use :data:`LookupConnDep` — the account is
    re-read on that asyncio connection (:func:`current_principal_async`) instead of the
    pooled synchronous one, so the request never hops to a worker thread.
    """
    allowed = frozenset(roles)
    unknown = allowed - ALL_ROLES
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    def check(principal: Principal) -> Principal:
        if principal.role not in allowed:
            raise ForbiddenError(
                f"a {principal.role} may not do this; allowed: {', '.join(sorted(allowed))}"
            )
        return principal

    # Two functions, not one with a variable in its annotation: FastAPI reads the
    # annotations (strings here) in the module's namespace.
    async def pooled(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        return check(principal)

    async def on_loop(
        principal: Annotated[Principal, Depends(current_principal_async)],
    ) -> Principal:
        return check(principal)

    dependency = on_loop if on_event_loop else pooled
    dependency.allowed_roles = allowed  # type: ignore[attr-defined]
    return Depends(dependency)


def allowed_roles_of(call: Callable[..., Any]) -> frozenset[str] | None:
    """The roles a dependency created by :func:`require` admits (None for other callables)."""
    roles = getattr(call, "allowed_roles", None)
    return roles if isinstance(roles, frozenset) else None


AnyUserDep = Annotated[Principal, require(*ALL_ROLES)]
AdminDep = Annotated[Principal, require("admin")]
OfficerDep = Annotated[Principal, require("officer")]
# The officer of an async view on LookupConnDep (route, last seen, next readers).
OfficerLookupDep = Annotated[Principal, require("officer", on_event_loop=True)]
RegistryDep = Annotated[Principal, require("admin", "registrar")]
SearchDep = Annotated[Principal, require("admin", "officer", "registrar")]
BikeViewerDep = Annotated[Principal, require("admin", "officer", "registrar", "resident")]
ResidentDep = Annotated[Principal, require("resident")]
ReporterDep = Annotated[Principal, require("officer", "resident")]
DutyDeskDep = Annotated[Principal, require("admin", "officer")]
AuditorDep = Annotated[Principal, require("auditor", "admin")]
# Readers' health and the deployment (readers, network, cameras, ingest figures): no bike,
# no case, no location of anything but the city's own equipment.
OperatorDep = Annotated[Principal, require("admin", "officer", "operator")]
SupervisorDep = Annotated[Principal, require("auditor", "admin")]

MAX_ID = 9_223_372_036_854_775_807
IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="numeric id", examples=[1])]
