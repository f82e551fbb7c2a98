"""Fuzzing the engine's batch consumer end to end (see engine_fuzz.py for what is drawn and
checked): a few hundred batches in ``make test``, 100,000 in ``make test-faults``.

The long run prints its figures as one JSON line (``-s`` shows it) and, with
``TAGTRAIL_FUZZ_REPORT=FILE``, writes them there; ``TAGTRAIL_FUZZ_BATCHES`` and
``TAGTRAIL_FUZZ_SEED`` change its size and seed.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import orjson
import pytest
from engine_fuzz import run_fuzz
from harness import PgCluster


def _progress(line: str) -> None:
    sys.stderr.write(f"fuzz: {line}\n")


@pytest.mark.faults
@pytest.mark.timeout(240)
def test_fuzzed_batches_store_every_accepted_read_once_and_count_every_refused_one(
    pg_cluster: PgCluster, mqtt_url: str
) -> None:
    db_url = pg_cluster.create_database(f"fuzz_{uuid.uuid4().hex[:10]}")
    figures = run_fuzz(db_url=db_url, mqtt_url=mqtt_url, batches=300, seed=20261207,
                       progress=_progress)  # fmt: skip
    assert figures["reads_stored"] > 0
    assert sum(figures["reads_refused_expected"].values()) > 0


@pytest.mark.faults
@pytest.mark.faults_full
@pytest.mark.timeout(4 * 3600)
def test_hundred_thousand_fuzzed_batches(pg_cluster: PgCluster, mqtt_url: str) -> None:
    batches = int(os.environ.get("TAGTRAIL_FUZZ_BATCHES", "100000"))
    seed = int(os.environ.get("TAGTRAIL_FUZZ_SEED", "1"))
    db_url = pg_cluster.create_database(f"fuzz_{uuid.uuid4().hex[:10]}")
    figures = run_fuzz(db_url=db_url, mqtt_url=mqtt_url, batches=batches, seed=seed,
                       progress=_progress)  # fmt: skip
    line = orjson.dumps(figures).decode()
    print(line)
    report = os.environ.get("TAGTRAIL_FUZZ_REPORT")
    if report:
        Path(report).write_text(line + "\n")
    assert figures["batches"] == batches
