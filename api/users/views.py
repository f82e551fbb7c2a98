"""POST /api/v1/auth/token; /api/v1/users (admins) and /api/v1/users/me."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import (
    AdminDep,
    AnyUserDep,
    ClientDep,
    ConfigDep,
    ConnDep,
    IdPath,
    KeysDep,
    LimiterDep,
)
from api.pagination import Page, PageDep, page_of
from api.users import service
from api.users.schemas import TokenOut, UserIn, UserOut, UserPatch
from track_engine.db import accounts
from track_engine.errors import NotFoundError

auth_router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
router = APIRouter(prefix="/api/v1/users", tags=["users"])


@auth_router.post("/token", responses={401: {}, 429: {}})
def token(
    conn: ConnDep,
    config: ConfigDep,
    keys: KeysDep,
    limiter: LimiterDep,
    client: ClientDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenOut:
    """Log in with username and password (form fields); returns a bearer token. Open to all;
    repeated failures for one username from one address are refused for a while (429)."""
    return service.login(
        conn,
        config=config,
        keys=keys,
        limiter=limiter,
        username=form.username[:64],
        password=form.password[:256],
        client=client,
        now=datetime.now(UTC),
    )


@router.get("/me")
def me(conn: ConnDep, principal: AnyUserDep) -> UserOut:
    """The caller's own account. Roles: any."""
    user = accounts.user_by_id(conn, principal.user_id)
    assert user is not None  # the principal was just read
    return service.to_out(user)


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
