"""Fixtures for tests that use the real PostgreSQL and Mosquitto.

Each test run creates its own databases (``tagtrail_test_<random>``) and MQTT topic prefixes,
so runs on one machine never collide. The services are found through
``TAGTRAIL_TEST_DATABASE_URL`` (an admin URL) and ``TAGTRAIL_TEST_MQTT_URL``; ``.ci/run`` sets
both. If a service is unreachable the tests that need it fail with a clear message: a silent
skip would let CI pass without testing storage.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from track_engine.db.migrate import migrate

ADMIN_URL = os.environ.get(
    "TAGTRAIL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MQTT_URL = os.environ.get("TAGTRAIL_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")


def _with_database(url: str, name: str) -> str:
    """The admin URL pointed at database ``name``."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """Admin URL of the machine's PostgreSQL (fails the test if it is down)."""
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {ADMIN_URL} is not reachable: {exc}")
    return ADMIN_URL


def create_database(admin_url: str) -> tuple[str, str]:
    """Create a fresh database; returns (name, url)."""
    name = f"tagtrail_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, _with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop a test database, disconnecting whatever still uses it."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_db(pg_admin_url: str) -> Iterator[str]:
    """URL of a new, empty database, dropped after the test."""
    name, url = create_database(pg_admin_url)
    try:
        yield url
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture
def db_url(empty_db: str) -> str:
    """URL of a new database with every migration applied."""
    migrate(empty_db)
    return empty_db


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    """URL of the machine's Mosquitto (fails the test if it is down)."""
    host, port = MQTT_URL.removeprefix("mqtt://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        pytest.fail(f"MQTT broker at {MQTT_URL} is not reachable: {exc}")
    return MQTT_URL


@pytest.fixture
def topic_prefix() -> str:
    """A topic root of this test's own, so that concurrent runs never see each other."""
    return f"tagtrail-test-{uuid.uuid4().hex[:12]}/v1"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
