"""Fixtures of the fault suite: one private PostgreSQL cluster per session.

``make test-faults`` runs the whole suite (``TAGTRAIL_FAULTS=full``); ``make test`` runs only
the short tests (marker ``faults``), the long ones (marker ``faults_full``) are skipped there.
The gateway tests' helpers (private Mosquitto, pty readers) are shared from tests/gateway.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))

from harness import PgCluster


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the long fault tests unless the full suite was asked for."""
    if os.environ.get("TAGTRAIL_FAULTS") == "full":
        return
    skip = pytest.mark.skip(reason="long fault test: run `make test-faults`")
    for item in items:
        if item.get_closest_marker("faults_full") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL 15 cluster of the suite's own, on a free loopback port."""
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
