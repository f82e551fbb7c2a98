"""Fixtures for tests that use the real PostgreSQL and Mosquitto.

Each test run creates its own databases (``tagtrail_test_<random>``) and MQTT topic prefixes,
so runs on one machine never collide. The services are found through
``TAGTRAIL_TEST_DATABASE_URL`` (an admin URL) and ``TAGTRAIL_TEST_MQTT_URL``; ``.ci/run`` sets
both. If a service is unreachable the tests that need it fail with a clear message: a silent
skip would let CI pass without testing storage. Plain helpers live in ``testsupport``.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from testsupport import ADMIN_URL, MQTT_URL, create_database, drop_database

from track_engine.db.migrate import migrate


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """Admin URL of the machine's PostgreSQL (fails the test if it is down)."""
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {ADMIN_URL} is not reachable: {exc}")
    return ADMIN_URL


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
