"""The demo's route test (tests/integration/test_demo_once.py) on TimescaleDB and on Citus.

``tagtrail demo --once --json`` runs the whole pipeline (simulated city, gateway, the
machine's Mosquitto, engine) into a database on the real engine; then the same assertions as
on plain PostgreSQL: the stolen bike's passages and timed route are printed, nothing is lost
between stages, an alert is raised, and the API serves the route (through the Citus
coordinator) and audits it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

# Imported as a module: its test functions, imported by name, would be collected here too.
import test_demo_once as demo_once
from citus_setup import migrate_and_distribute

from api.users.service import create_user

pytestmark = pytest.mark.slow


def _demo(url: str, mqtt_url: str, data_dir: Path) -> tuple[dict[str, Any], str]:
    env = {
        **os.environ,
        "TAGTRAIL_DATABASE_URL": url,
        "TAGTRAIL_MQTT_URL": mqtt_url,
        "TAGTRAIL_TOPIC_PREFIX": f"tagtrail-test-{uuid.uuid4().hex[:12]}/v1",
        "TAGTRAIL_DATA_DIR": str(data_dir),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tagtrail", "demo", "--once", "--json"],
        env=env,
        capture_output=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    with psycopg.connect(url) as conn:
        create_user(
            conn,
            username=demo_once.OFFICER,
            password=demo_once.PASSWORD,
            role="officer",
            actor="test",
            actor_role="test",
        )
    return orjson.loads(done.stdout), url


@pytest.fixture(params=[pytest.param("timescaledb", marks=pytest.mark.timescaledb),
                        pytest.param("citus", marks=pytest.mark.citus)])  # fmt: skip
def engine_db(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database on TimescaleDB (hypertables by migration 0003) or on Citus (distributed)."""
    if request.param == "timescaledb":
        yield request.getfixturevalue("timescale_db")
        return
    url = request.getfixturevalue("citus_db")
    migrate_and_distribute(url)
    yield url


def test_demo_route_on_the_real_engine(engine_db: str, mqtt_url: str, tmp_path: Path) -> None:
    run = _demo(engine_db, mqtt_url, tmp_path)
    demo_once.test_demo_prints_stolen_plate_passages_and_timed_route(run)
    demo_once.test_api_serves_the_route_and_audits_it(run)
