"""Fixtures the API and security suites share: the API on a migrated database per module, and
one account per role. Imported into both suites' conftest.py (pytest finds fixtures there)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_helpers import ROLES, add_user, config, create_migrated_database, login
from fastapi.testclient import TestClient
from testsupport import drop_database

from api.app import create_app


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
    """Authorization headers of one account per role (``role`` -> header), users
    ``the-<role>``."""
    for role in ROLES:
        add_user(api_db, f"the-{role}", role)
    return {role: login(client, f"the-{role}") for role in ROLES}
