"""Fixtures for tests that use the real PostgreSQL and Mosquitto.

Each test run creates its own databases (``tagtrail_test_<random>``) and MQTT topic prefixes,
so runs on one machine never collide. The services are found through
``TAGTRAIL_TEST_DATABASE_URL`` (an admin URL) and ``TAGTRAIL_TEST_MQTT_URL``; ``.ci/run`` sets
both. If a service is unreachable the tests that need it fail with a clear message: a silent
skip would let CI pass without testing storage. Plain helpers live in ``testsupport``.
"""

from __future__ import annotations

import signal
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from testsupport import ADMIN_URL, MQTT_URL, create_database, drop_database

from track_engine.db.migrate import migrate

REAL_ENGINES = "realengines"  # tests/realengines: TimescaleDB, Citus and NATS clusters

# A run started in the background of a script (`make test &`, CI runners, nohup) inherits SIGINT
# ignored, and so would every process a test starts: a `tagtrail` service told to stop with
# SIGINT, as Ctrl-C would, then never stops. Tests mean the terminal's SIGINT.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The real-engine tests first: under ``make test``'s two workers they are the longest unit
    of work (see ``pytest_xdist_make_scheduler``), so starting them first keeps the run short."""
    del config
    items.sort(key=lambda item: REAL_ENGINES not in item.path.parts)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``make test`` runs on two workers (pytest-xdist, ``--dist loadfile``): a test file stays
    on one worker, so its module-scoped fixtures start once and its tests run in order; all
    real-engine tests share one worker, so their clusters (TimescaleDB, Citus, NATS) start once
    per run, not once per worker."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileOrRealEngines(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(f"tests/{REAL_ENGINES}/"):
                return REAL_ENGINES
            return str(super()._split_scope(nodeid))

    return FileOrRealEngines(config, log)
