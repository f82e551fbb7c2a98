"""Helpers of the API tests: a migrated database per module, accounts and their tokens."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi.testclient import TestClient
from testsupport import create_database

from api.config import ApiConfig
from api.users import store as accounts
from api.users.service import create_user
from track_engine.db.migrate import migrate

ROLES = ("admin", "officer", "registrar", "resident", "auditor", "operator")
PASSWORD = "correct horse battery"
KEYS = {"jwt_secret": b"j" * 32, "id_hash_key": b"h" * 32, "id_enc_key": b"e" * 32}


def create_migrated_database(admin_url: str) -> tuple[str, str]:
    """A fresh database with every migration; returns (name, url)."""
    name, url = create_database(admin_url)
    migrate(url)
    return name, url


def config(url: str, **overrides: Any) -> ApiConfig:
    """An ApiConfig with fixed test keys."""
    return ApiConfig(database_url=url, **{**KEYS, **overrides})


def add_user(url: str, username: str, role: str, *, owner_id: int | None = None) -> int:
    """Create an account directly in the database; returns its id."""
    with psycopg.connect(url) as conn:
        user = create_user(
            conn, username=username, password=PASSWORD, role=role, actor="test", actor_role="test"
        )
        if owner_id is not None:
            accounts.link_owner(conn, user_id=user.user_id, owner_id=owner_id)
        return user.user_id


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Authorization header of a fresh token."""
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
