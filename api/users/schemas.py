"""Request and response models of the users domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from api.request_model import RequestModel
from api.users.password_policy import MAX_LENGTH, MIN_LENGTH, check_password

Role = Literal["admin", "officer", "registrar", "resident", "auditor", "operator"]
USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{3,64}$"
# A password being set: long enough and not a common one (api/users/password_policy.py).
NewPassword = Annotated[
    str,
    Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH, examples=["correct horse battery"]),
    AfterValidator(check_password),
]


class TokenOut(BaseModel):
    """A bearer token (OAuth2 token response)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the token expires", examples=[3600])
    role: Role


class UserIn(RequestModel):
    """A new account."""

    username: str = Field(pattern=USERNAME_PATTERN, examples=["officer.wang"])
    password: NewPassword
    role: Role = Field(examples=["officer"])


class PasswordChange(RequestModel):
    """A user's own new password; the current one proves it is them (a stolen token alone
    cannot change it)."""

    current_password: str = Field(max_length=MAX_LENGTH)
    new_password: NewPassword


class PasswordReset(RequestModel):
    """A new password an admin sets for an account (e.g. one its owner forgot)."""

    new_password: NewPassword


class UserOut(BaseModel):
    """An account as admins and its owner see it (never the password hash)."""

    user_id: int
    username: str
    role: Role
    owner_id: int | None
    disabled: bool
    created_at: datetime


class UserPatch(RequestModel):
    """Enable or disable an account."""

    disabled: bool
