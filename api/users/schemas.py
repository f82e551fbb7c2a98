"""Request and response models of the users domain."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Role = Literal["admin", "officer", "registrar", "resident", "auditor"]
USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{3,64}$"


class TokenOut(BaseModel):
    """A bearer token (OAuth2 token response)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the token expires", examples=[3600])
    role: Role


class UserIn(BaseModel):
    """A new account."""

    username: str = Field(pattern=USERNAME_PATTERN, examples=["officer.wang"])
    password: str = Field(min_length=8, max_length=256, examples=["correct horse battery"])
    role: Role = Field(examples=["officer"])


class UserOut(BaseModel):
    """An account as admins and its owner see it (never the password hash)."""

    user_id: int
    username: str
    role: Role
    owner_id: int | None
    disabled: bool
    created_at: datetime


class UserPatch(BaseModel):
    """Enable or disable an account."""

    disabled: bool
