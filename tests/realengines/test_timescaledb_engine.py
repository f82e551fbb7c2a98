"""TagTrail on a real TimescaleDB (a private PostgreSQL 15 with timescaledb preloaded, #19).

The extension's background scheduler is off in the fixture (it fails every job on PostgreSQL
15.20 anyway): what runs the policies here is the engine's own maintenance. Proven: the
migrations make hypertables without the redundant ``(read_at DESC)`` index; the policy runner
compresses the old chunks and fills the hourly aggregates; a batch re-sent into a compressed
chunk is stored once; retention as the engine's login (not the owner) drops old chunks
through ``tagtrail_drop_chunks`` and keeps the reads under a case hold.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest
from engine_clusters import PgNode, wait_until
from psycopg import sql

from api.registry import loaders as registry
from track_engine.consumer.config import EngineConfig
from track_engine.consumer.service import EngineService
from track_engine.db.migrate import migrate
from track_engine.db.timescale_jobs import POLICY_PROCS, PolicyRunner
from track_engine.db.writer import PartitionKeeper, store_reads
from track_engine.retention import apply_retention

pytestmark = pytest.mark.timescaledb

HELD = "E28011A100000000000000C1"
FREE = "E2000000000000000000C2C2"


def _reads(tag: str, at: datetime, n: int, reader: str = "R0001") -> pd.DataFrame:
    us = int(at.timestamp() * 1e6)
    return pd.DataFrame(
        {
            "tag_id": [tag] * n,
            "read_at_us": [us + i * 1_000_000 for i in range(n)],
            "reader_id": [reader] * n,
            "antenna": [1] * n,
            "rssi_dbm": [-60.0] * n,
            "reader_seq": list(range(n)),
        }
    )


def _one(url: str, query: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_policies_run_by_the_engine_and_compressed_chunks_stay_exactly_once(
    timescale_db: str,
) -> None:
    migrate(timescale_db)
    with psycopg.connect(timescale_db) as conn:
        mode = conn.execute("SELECT mode FROM partition_policy WHERE table_name = 'reads'")
        assert mode.fetchone() == ("timescaledb",)
        indexes = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'reads'"
        ).fetchall()
    assert ("reads_read_at_idx",) not in indexes
    assert len(indexes) == 1, indexes  # the primary key, which starts with read_at

    two_days_ago = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    batch = pd.concat([_reads(HELD, two_days_ago, 50), _reads(FREE, two_days_ago, 50, "R0002")])
    with psycopg.connect(timescale_db) as conn:
        assert store_reads(conn, batch, gateway_id="gw-1", partitions=PartitionKeeper()) == 100

    # The engine's housekeeping, as the service runs it hourly: the policies are due (the
    # scheduler never ran them), so the engine runs them and counts it.
    service = EngineService(
        EngineConfig(
            database_url=timescale_db,
            mqtt_url="mqtt://127.0.0.1:1",  # never connected: only housekeeping runs here
            topic_prefix=f"tagtrail-test-{uuid.uuid4().hex[:12]}/v1",
            shards=(0,),
            client_id=f"engine-ts-{uuid.uuid4().hex[:8]}",
        )
    )
    try:
        service.housekeeping()
        ran = service.metrics.timescale_jobs.labels(outcome="ran")._value.get()
        failing = service.metrics.timescale_jobs_failing._value.get()
    finally:
        service.close()
    assert ran == 3  # compression + two continuous aggregates
    assert failing == 3
    compressed = _one(
        timescale_db,
        "SELECT count(*) FROM timescaledb_information.chunks "
        "WHERE hypertable_name = 'reads' AND is_compressed",
    )
    assert compressed == 1
    with psycopg.connect(timescale_db) as conn:
        row = conn.execute(
            "SELECT format('%I.%I', materialization_hypertable_schema,"
            " materialization_hypertable_name) FROM timescaledb_information.continuous_aggregates"
            " WHERE view_name = 'reader_hourly_reads'"
        ).fetchone()
        assert row is not None
        materialized = conn.execute(f"SELECT count(*) FROM {row[0]}").fetchone()
        hourly = conn.execute(
            "SELECT reader_id, reads FROM reader_hourly_reads ORDER BY 1"
        ).fetchall()
    assert materialized is not None
    assert materialized[0] == 2  # one bucket per reader, stored by the aggregate's refresh
    assert hourly == [("R0001", 50), ("R0002", 50)]

    # A redelivered batch into the compressed chunk: nothing new, nothing twice.
    again = pd.concat([batch, _reads(FREE, two_days_ago + timedelta(minutes=5), 5, "R0003")])
    with psycopg.connect(timescale_db) as conn:
        assert store_reads(conn, again, gateway_id="gw-1", partitions=PartitionKeeper()) == 5
    assert _one(timescale_db, "SELECT count(*) FROM reads") == 105
    assert (
        _one(
            timescale_db,
            "SELECT count(*) FROM (SELECT 1 FROM reads GROUP BY tag_id, read_at, reader_id,"
            " antenna HAVING count(*) > 1) d",
        )
        == 0
    )

    # The runner keeps each job's schedule: due once, then not again within its interval.
    runner = PolicyRunner(timescale_db)
    assert len(runner.run_due(now=1e6).ran) == 3
    assert runner.run_due(now=1e6 + 60).ran == []


def test_retention_as_the_engine_login_keeps_held_reads(timescale_db: str) -> None:
    migrate(timescale_db)
    old = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=10)
    with psycopg.connect(timescale_db) as conn:
        ids = registry.register_bikes(
            conn,
            [
                registry.Registration(
                    owner_name="Wang Fang", owner_phone="13700000000",
                    owner_id_number="110101199003074258", brand="Yadea", colour="black",
                    frame_number="FRAMEHOLD81", plate="ZBHOLD81", tag_id=HELD,
                )
            ],
            registered_at=old - timedelta(days=30),
            id_hash_key=b"k" * 32,
        )  # fmt: skip
        theft_id, _ = registry.open_theft(
            conn, bike_id=ids["ZBHOLD81"], stolen_at=old, reported_at=old + timedelta(hours=1),
            place="gate", description="", case_number="C-HOLD-81",
        )  # fmt: skip
        conn.execute(
            "INSERT INTO case_holds (theft_id, tag_id, held_from) VALUES (%s, %s, %s)",
            (theft_id, HELD, old - timedelta(days=1)),
        )
        batch = pd.concat([_reads(HELD, old, 3), _reads(FREE, old, 4)])
        store_reads(conn, batch, gateway_id="gw-1", partitions=PartitionKeeper())
        store_reads(
            conn,
            _reads(FREE, datetime.now(UTC), 2),
            gateway_id="gw-1",
            partitions=PartitionKeeper(),
        )
    login = f"tt_engine_ts_{uuid.uuid4().hex[:10]}"
    info = psycopg.conninfo.conninfo_to_dict(timescale_db)
    with psycopg.connect(timescale_db, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE tagtrail_engine").format(sql.Identifier(login))
        )
    engine_url = psycopg.conninfo.make_conninfo(**{**info, "user": login})
    with psycopg.connect(engine_url) as conn:
        # Straight drop_chunks is the owner's; the function is the engine's way.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT drop_chunks('reads', older_than => now() - interval '5 days')")
        conn.rollback()
        result = apply_retention(conn, retention_days=5, now=datetime.now(UTC))
    assert len(result.partitions_dropped) == 1
    assert result.reads_held == 3
    assert _one(timescale_db, "SELECT count(*) FROM reads") == 2
    assert _one(timescale_db, f"SELECT count(*) FROM held_reads WHERE tag_id = '{HELD}'") == 3
    with psycopg.connect(engine_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT tagtrail_drop_chunks('reads', now())")


def test_jobs_the_scheduler_fails_are_detected_and_run_by_the_engine(
    timescale_cluster: object,  # the extension is installed (or the test is skipped)
) -> None:
    """With TimescaleDB's own scheduler running, as in production: on PostgreSQL 15.20 it
    fails every job; the engine sees the failures and runs the policies itself."""
    node = PgNode(
        "timescaledb", name="timescaledb-bgw", extra="timescaledb.telemetry_level = off\n"
    )
    try:
        node.start()
        with psycopg.connect(node.admin_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE t")
        url = node.url("t")
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "SELECT alter_job(job_id, next_start => now())"
                " FROM timescaledb_information.jobs WHERE proc_name = ANY(%s)",
                (list(POLICY_PROCS),),
            )

            def all_failed() -> bool:
                row = conn.execute(
                    "SELECT count(*) FROM timescaledb_information.job_stats s"
                    " JOIN timescaledb_information.jobs j USING (job_id)"
                    " WHERE j.proc_name = ANY(%s) AND s.last_run_status = 'Failed'",
                    (list(POLICY_PROCS),),
                ).fetchone()
                return row is not None and row[0] == 3

            wait_until(all_failed, 60, "the scheduler's first runs")
            errors = conn.execute(
                "SELECT DISTINCT err_message FROM timescaledb_information.job_errors"
            ).fetchall()
        done = PolicyRunner(url).run_due()
    finally:
        node.destroy()
    assert done.scheduler_failing == 3
    assert len(done.ran) == 3
    assert done.failed == []
    assert errors  # what the scheduler said (on 15.20: cannot drop portal "" …)
