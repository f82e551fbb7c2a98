"""Fixtures of the security tests: the API on a migrated database, one account per role.

The API tests' helpers (tests/http_api: accounts, logins, valid registrations) and the gateway
tests' helpers (tests/gateway: waiting, a private Mosquitto) are shared.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

for shared in ("http_api", "gateway"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / shared))

from api_helpers import ROLES, add_user, config, create_migrated_database, login  # noqa: E402
from testsupport import drop_database  # noqa: E402

from api.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def api_db(pg_admin_url: str) -> Iterator[str]:
    """URL of a migrated database shared by the module's tests."""
    name, url = create_migrated_database(pg_admin_url)
    try:
        yield url
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture(scope="module")
def client(api_db: str) -> Iterator[TestClient]:
    """The API on the module's database."""
    with TestClient(create_app(config(api_db))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def headers(api_db: str, client: TestClient) -> dict[str, dict[str, str]]:
    """Authorization headers of one account per role (``role`` -> header)."""
    for role in ROLES:
        add_user(api_db, f"sec-{role}", role)
    return {role: login(client, f"sec-{role}") for role in ROLES}
