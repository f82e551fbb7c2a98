"""Fixtures of the real-engine tests (issue #19): TimescaleDB, Citus and a NATS cluster.

Each cluster starts once per session on free loopback ports and is removed afterwards; each
test gets a database (or topic prefix) of its own. Where one cannot start here (PostgreSQL 15
or the extension missing and not installable, nats-server missing) its tests are skipped with
the reason, which ``-ra`` prints: never silently.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Reused: the shard-equivalence run (tests/integration/test_shards.py) and the fault stack
# (tests/faults/harness.py, which needs tests/gateway's helpers), and the API tests' helpers.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "http_api"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))

from engine_clusters import (
    CitusCluster,
    NatsCluster,
    TimescaleCluster,
    ensure_extension,
    missing_nats,
    missing_pg15,
)
from harness import PgCluster


@pytest.fixture(scope="session")
def timescale_cluster() -> Iterator[TimescaleCluster]:
    """A private PostgreSQL 15 with TimescaleDB preloaded."""
    why = ensure_extension("timescaledb")
    if why is not None:
        pytest.skip(f"TimescaleDB cluster cannot start: {why}")
    cluster = TimescaleCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def timescale_db(timescale_cluster: TimescaleCluster) -> Iterator[str]:
    """URL of a new, empty database on the TimescaleDB cluster, dropped after the test."""
    name, url = timescale_cluster.create_database()
    try:
        yield url
    finally:
        timescale_cluster.drop_database(name)


@pytest.fixture(scope="session")
def citus_cluster() -> Iterator[CitusCluster]:
    """A private Citus coordinator and two workers."""
    why = ensure_extension("citus")
    if why is not None:
        pytest.skip(f"Citus cluster cannot start: {why}")
    cluster = CitusCluster(workers=2)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def citus_db(citus_cluster: CitusCluster) -> Iterator[str]:
    """Coordinator URL of a new database with citus and both workers, dropped after."""
    name, url = citus_cluster.create_database()
    try:
        yield url
    finally:
        citus_cluster.drop_database(name)


@pytest.fixture(scope="session")
def nats_cluster() -> Iterator[NatsCluster]:
    """Three nats-server nodes in one cluster, each with MQTT and JetStream."""
    why = missing_nats()
    if why is not None:
        pytest.skip(f"NATS cluster cannot start: {why}")
    cluster = NatsCluster(size=3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def plain_pg_cluster() -> Iterator[PgCluster]:
    """A plain PostgreSQL 15 cluster of the session's own (the fault stack's database)."""
    why = missing_pg15()
    if why is not None:
        pytest.skip(f"PostgreSQL 15 cluster cannot start: {why}")
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
