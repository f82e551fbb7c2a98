"""A huge batch, and a database that is not up yet, do not stop the engine.

Regressions for two findings: a valid batch of 1,000,000 reads crashed the engine (IndexError
in ``Interner.names``: the tag codes were compacted while that batch's reads still waited to be
folded, so their codes pointed past the table), and the engine exited when it was started
while its database was down, instead of waiting for it.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
import pytest
from harness import Broker, PgCluster, Service, publish_twice

from reader_gateway.wire import ReadBatch, batch_from_arrays, encode_batch, reads_topic
from track_engine import pipeline
from track_engine.pipeline import Engine

pytestmark = pytest.mark.faults
READERS = [f"R{i:03d}" for i in range(50)]


def _batch(seq: int, first_us: int, span_us: int, tags: list[str]) -> ReadBatch:
    """Reads of ``tags`` (one each) spread over ``span_us`` from ``first_us``, 50 readers."""
    n = len(tags)
    rng = np.random.default_rng(seq)
    tag = np.empty(n, dtype=object)
    tag[:] = tags
    return batch_from_arrays(
        gateway_id="gw-big", batch_seq=seq, sent_at_us=first_us,
        reader_code=rng.integers(0, len(READERS), n), reader_names=READERS,
        antenna=np.ones(n, np.int16), tag=tag, rssi_dbm=np.full(n, -60.0, np.float32),
        read_at_us=first_us + np.sort(rng.integers(0, span_us + 1, n)),
        seq=np.arange(seq * 10**7, seq * 10**7 + n),
    )  # fmt: skip


def _big_batch_not_folded_then_compacted(db_url: str, n: int) -> None:
    """A stream, then an ``n``-read batch within the fold interval (so it waits in memory,
    unfolded), then more batches: the next one's tag-code compaction must keep its codes."""
    t0 = time.time_ns() // 1000 - 3600_000_000
    batches = [
        _batch(1, t0, 0, ["A0"]),  # folded at once: the next fold is due 2 s of event time later
        _batch(2, t0, 1_000_000, [f"E2{i:022X}" for i in range(n)]),  # within those 2 s
        _batch(3, t0 + 1_500_000, 0, ["A1"]),  # compaction here; still not folded
        _batch(4, t0 + 60_000_000, 0, ["A2"]),  # folds, and closes the big batch's passages
    ]
    with psycopg.connect(db_url) as conn:
        engine = Engine(conn, gap_s=10.0)
        stored = sum(engine.process([b]).reads_stored for b in batches)
        engine.flush()
        assert stored == n + 3
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM reads), (SELECT count(*) FROM passages),"
            " (SELECT count(*) FROM passages p WHERE NOT EXISTS (SELECT 1 FROM reads r"
            "   WHERE r.tag_id = p.tag_id AND r.reader_id = p.reader_id"
            "   AND r.read_at = p.first_at))"
        ).fetchone()
    # Every read stored; one passage per tag (each tag was read once), each under its own tag.
    assert counts == (n + 3, n + 3, 0)


def test_tag_codes_compacted_while_a_batch_waits_to_be_folded_stay_right(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same bug as the 1,000,000-read batch, at a scale a unit test can afford: compaction
    # runs once 2,000 more tags are known than in use, instead of 500,000.
    monkeypatch.setattr(pipeline, "_COMPACT_SLACK", 2_000)
    _big_batch_not_folded_then_compacted(db_url, 5_000)


@pytest.mark.faults_full
@pytest.mark.timeout(900)
def test_million_read_batch_is_stored(db_url: str) -> None:
    _big_batch_not_folded_then_compacted(db_url, 1_000_000)


def test_engine_started_while_database_down_waits_and_then_consumes(
    pg_cluster: PgCluster, tmp_path: Path
) -> None:
    db_url = pg_cluster.create_database(f"down_{uuid.uuid4().hex[:10]}")
    broker = Broker(tmp_path / "broker")
    broker.start()
    prefix = f"down-{uuid.uuid4().hex[:8]}/v1"
    engine = Service(
        ["-v", "engine", "--worker-id", "down", "--metrics-port", "0", "--no-record-status"],
        {
            "TAGTRAIL_DATABASE_URL": db_url,
            "TAGTRAIL_MQTT_URL": broker.url,
            "TAGTRAIL_TOPIC_PREFIX": prefix,
            "TAGTRAIL_DATA_DIR": str(tmp_path / "data"),
            "TAGTRAIL_MISS_RATE_INTERVAL_H": "0",
        },
        tmp_path / "engine.log",
    )
    now = time.time_ns() // 1000
    batch = _batch(1, now - 60_000_000, 1_000_000, [f"E2{i:06X}" for i in range(20)])
    pg_cluster.stop()
    try:
        engine.start()
        deadline = time.monotonic() + 30
        while "is not reachable" not in engine.log():
            assert engine.alive(), f"the engine exited:\n{engine.log()[-3000:]}"
            assert time.monotonic() < deadline, engine.log()[-3000:]
            time.sleep(0.1)  # polling its log for the line
        time.sleep(2)  # a few more attempts: it keeps waiting, it does not give up
        assert engine.alive(), engine.log()[-3000:]
    finally:
        pg_cluster.start()
    try:
        # Published (twice: idempotent) until the engine, subscribed once it got its database,
        # has stored it; a batch sent before it subscribed is not routed to it.
        deadline = time.monotonic() + 60
        stored = 0
        while stored < 20:
            assert engine.alive(), engine.log()[-3000:]
            assert time.monotonic() < deadline, engine.log()[-3000:]
            publish_twice(broker.port, reads_topic(0, f"{prefix}/reads"), encode_batch(batch))
            time.sleep(0.5)  # then look again
            with psycopg.connect(db_url) as conn:
                row = conn.execute("SELECT count(*) FROM reads").fetchone()
            stored = int(row[0]) if row else 0
        assert stored == 20
        log = engine.log()
        assert "database at 127.0.0.1:" in log
        assert "the engine waits for it, next try in" in log
    finally:
        engine.stop()
        broker.stop()
