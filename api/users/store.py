"""Users of the API: accounts, roles, and the owner a resident account belongs to.

The caller owns the transaction. Passwords arrive here already hashed (argon2, in the API).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

ROLES = ("admin", "officer", "registrar", "resident", "auditor", "operator")


@dataclass(frozen=True, slots=True)
class UserRecord:
    """One account."""

    user_id: int
    username: str
    password_hash: str
    role: str
    owner_id: int | None
    disabled: bool
    created_at: datetime
    token_version: int  # bumped by a password change: tokens of an older version are refused


_COLUMNS = "user_id, username, password_hash, role, owner_id, disabled, created_at, token_version"


def create_user(
    conn: psycopg.Connection,
    *,
    username: str,
    password_hash: str,
    role: str,
    owner_id: int | None = None,
) -> UserRecord | None:
    """Create an account; None if the username is taken."""
    with conn.cursor(row_factory=class_row(UserRecord)) as cur:
        return cur.execute(
            f"""INSERT INTO users (username, password_hash, role, owner_id)
                VALUES (%s, %s, %s, %s) ON CONFLICT (username) DO NOTHING
                RETURNING {_COLUMNS}""",
            (username, password_hash, role, owner_id),
        ).fetchone()


def user_by_name(conn: psycopg.Connection, username: str) -> UserRecord | None:
    """The account with this username, if any."""
    with conn.cursor(row_factory=class_row(UserRecord)) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM users WHERE username = %s", (username,)
        ).fetchone()


_BY_ID = f"SELECT {_COLUMNS} FROM users WHERE user_id = %s"


def user_by_id(conn: psycopg.Connection, user_id: int) -> UserRecord | None:
    """The account with this id, if any."""
    with conn.cursor(row_factory=class_row(UserRecord)) as cur:
        return cur.execute(_BY_ID, (user_id,)).fetchone()


async def user_by_id_async(conn: psycopg.AsyncConnection[Any], user_id: int) -> UserRecord | None:
    """:func:`user_by_id` on an asyncio connection (the API authenticates on its event loop)."""
    cur = await conn.execute(_BY_ID, (user_id,))
    row = await cur.fetchone()
    return None if row is None else UserRecord(*row)


def list_users(
    conn: psycopg.Connection, *, limit: int, offset: int
) -> tuple[list[UserRecord], int]:
    """A page of accounts by username, and the total count."""
    with conn.cursor(row_factory=class_row(UserRecord)) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM users ORDER BY username LIMIT %s OFFSET %s", (limit, offset)
        ).fetchall()
    total = conn.execute("SELECT count(*) FROM users").fetchone()
    return rows, int(total[0]) if total else 0


def set_password_hash(conn: psycopg.Connection, *, user_id: int, password_hash: str) -> None:
    """Replace an account's password hash with one of the same password (argon2 parameters
    upgraded on login): its tokens stay valid. A new password goes through
    :func:`change_password`."""
    conn.execute("UPDATE users SET password_hash = %s WHERE user_id = %s", (password_hash, user_id))


def change_password(conn: psycopg.Connection, *, user_id: int, password_hash: str) -> bool:
    """Set a new password and revoke every token issued so far (their version is now stale);
    False if there is no such account."""
    done = conn.execute(
        """UPDATE users SET password_hash = %s, token_version = token_version + 1
           WHERE user_id = %s""",
        (password_hash, user_id),
    ).rowcount
    return done == 1


def link_owner(conn: psycopg.Connection, *, user_id: int, owner_id: int) -> None:
    """Make a resident account the owner's: it then sees that owner's bikes."""
    conn.execute("UPDATE users SET owner_id = %s WHERE user_id = %s", (owner_id, user_id))


def set_disabled(conn: psycopg.Connection, *, user_id: int, disabled: bool) -> bool:
    """Disable or re-enable an account; False if there is no such account."""
    done = conn.execute(
        "UPDATE users SET disabled = %s WHERE user_id = %s", (disabled, user_id)
    ).rowcount
    return done == 1
