"""POST /api/v1/auth/token; /api/v1/users (admins) and /api/v1/users/me."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import (
    AdminDep,
    AnyUserDep,
    ClientDep,
    ConfigDep,
    ConnDep,
    HashExecutorDep,
    HashGateDep,
    IdPath,
    KeysDep,
    LimiterDep,
    PoolDep,
)
from api.errors import TooManyRequestsError
from api.pagination import Page, PageDep, page_of
from api.users import service
from api.users import store as accounts
from api.users.schemas import (
    PasswordChange,
    PasswordReset,
    TokenOut,
    UserIn,
    UserOut,
    UserPatch,
)
from track_engine.errors import NotFoundError

auth_router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
router = APIRouter(prefix="/api/v1/users", tags=["users"])


@auth_router.post("/token", responses={401: {}, 413: {}, 429: {}})
async def token(
    pool: PoolDep,
    config: ConfigDep,
    keys: KeysDep,
    limiter: LimiterDep,
    gate: HashGateDep,
    executor: HashExecutorDep,
    client: ClientDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenOut:
    """Log in with username and password (form fields); returns a bearer token. Open to all.
    Refused for a while (429 + Retry-After) after repeated failures for one username from one
    address, from one address for any usernames, or for one username from any addresses, and
    (429, Retry-After: 1) while the server already checks as many passwords as it allows at a
    time. A refusal is answered after a pause (1 s): a client retrying at once is paced."""
    username, password = form.username[:64], form.password[:256]
    # On the event loop up to here: a refused login touches neither a thread nor a connection,
    # and is answered after a pause (api/login_gate.py).
    try:
        service.refuse_if_limited(limiter, username, client)
        service.take_hash_slot(gate)
    except TooManyRequestsError:
        await asyncio.sleep(config.login_refusal_delay_s)
        raise
    # On the login threads (as many as slots, at a lower priority), never the shared thread
    # pool of the other views. Shielded: a client that hangs up does not free the slot before
    # the hash it started is done.
    try:
        checking = asyncio.get_running_loop().run_in_executor(
            executor,
            partial(
                service.login,
                pool,
                config=config,
                keys=keys,
                limiter=limiter,
                username=username,
                password=password,
                client=client,
                now=datetime.now(UTC),
            ),
        )
    except BaseException:  # not scheduled (the executor is shutting down): give the slot back
        gate.leave()
        raise
    checking.add_done_callback(lambda _: gate.leave())
    return await asyncio.shield(checking)


@router.get("/me")
def me(conn: ConnDep, principal: AnyUserDep) -> UserOut:
    """The caller's own account. Roles: any."""
    user = accounts.user_by_id(conn, principal.user_id)
    if user is None:  # the principal was just read
        raise RuntimeError("me: the account just read is gone")
    return service.to_out(user)


@router.post("/me/password", responses={400: {}, 429: {}})
def change_password(
    conn: ConnDep,
    principal: AnyUserDep,
    config: ConfigDep,
    keys: KeysDep,
    limiter: LimiterDep,
    gate: HashGateDep,
    body: PasswordChange,
) -> TokenOut:
    """Change your own password, giving the current one. Every token issued before (the one
    sent with this request too) stops working; the answer carries a fresh one. Roles: any."""
    fresh = service.change_own_password(
        conn,
        config=config,
        keys=keys,
        limiter=limiter,
        gate=gate,
        user_id=principal.user_id,
        current_password=body.current_password,
        new_password=body.new_password,
        client=principal.remote_addr,
        now=datetime.now(UTC),
    )
    if fresh is None:
        conn.commit()  # the failed attempt's audit entry stays, the refusal follows
        raise service.WrongCurrentPasswordError("the current password is wrong")
    return fresh


@router.get("")
def list_users(conn: ConnDep, principal: AdminDep, page: PageDep) -> Page[UserOut]:
    """Every account, by username. Roles: admin."""
    del principal
    users, total = accounts.list_users(conn, limit=page.limit, offset=page.offset)
    return page_of([service.to_out(u) for u in users], total, page)


@router.post("", status_code=status.HTTP_201_CREATED, responses={409: {}})
def create_user(conn: ConnDep, principal: AdminDep, body: UserIn) -> UserOut:
    """Create an account. Roles: admin."""
    user = service.create_user(
        conn,
        username=body.username,
        password=body.password,
        role=body.role,
        actor=principal.username,
        actor_role=principal.role,
        remote_addr=principal.remote_addr,
    )
    return service.to_out(user)


@router.get("/{user_id}")
def get_user(conn: ConnDep, principal: AdminDep, user_id: IdPath) -> UserOut:
    """One account. Roles: admin."""
    del principal
    user = accounts.user_by_id(conn, user_id)
    if user is None:
        raise NotFoundError(f"no user {user_id}")
    return service.to_out(user)


@router.put("/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT, responses={429: {}})
def reset_password(
    conn: ConnDep, principal: AdminDep, gate: HashGateDep, user_id: IdPath, body: PasswordReset
) -> Response:
    """Set a new password for an account (a reset); every token it had stops working at once.
    Roles: admin."""
    service.reset_password(
        conn,
        gate=gate,
        user_id=user_id,
        new_password=body.new_password,
        actor=principal.username,
        actor_role=principal.role,
        remote_addr=principal.remote_addr,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch("/{user_id}")
def patch_user(conn: ConnDep, principal: AdminDep, user_id: IdPath, body: UserPatch) -> UserOut:
    """Disable or re-enable an account. Roles: admin."""
    return service.to_out(
        service.set_disabled(
            conn,
            user_id=user_id,
            disabled=body.disabled,
            actor=principal.username,
            actor_role=principal.role,
            remote_addr=principal.remote_addr,
        )
    )
