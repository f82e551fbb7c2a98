"""Helpers for tests that need their own databases or ports.

An ordinary module, not a conftest: every ``conftest.py`` is imported under the one name
``conftest``, so ``from conftest import ...`` would pick whichever conftest came first.
"""

from __future__ import annotations

import os
import uuid

import psycopg

from tagtrail.ports import free_port as free_port  # re-exported: the tests take it from here

ADMIN_URL = os.environ.get(
    "TAGTRAIL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MQTT_URL = os.environ.get("TAGTRAIL_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")


def with_database(url: str, name: str) -> str:
    """The admin URL pointed at database ``name``."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


def create_database(admin_url: str) -> tuple[str, str]:
    """Create a fresh database; returns (name, url)."""
    name = f"tagtrail_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop a test database, disconnecting whatever still uses it."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
