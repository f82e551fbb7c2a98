"""A huge batch, and a database that is not up yet, do not stop the engine.

Regressions for two findings: a valid batch of 1,000,000 reads crashed the engine (IndexError
in ``Interner.names``: the tag codes were compacted while that batch's reads still waited to be
folded, so their codes pointed past the table), and the engine exited when it was started
while its database was down, instead of waiting for it.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
import pytest
from harness import Broker, PgCluster, Service, publish_twice

from reader_gateway.brokers import mqtt_endpoint
from reader_gateway.wire import ReadBatch, batch_from_arrays, encode_batch, reads_topic
from track_engine.consumer.config import EngineConfig
from track_engine.consumer.service import EngineService
from track_engine.core import coding
from track_engine.pipeline import Engine, PreparedBatch, ProcessResult

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
    monkeypatch.setattr(coding, "COMPACT_SLACK", 2_000)
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


def test_a_batch_the_engine_fails_on_is_quarantined_and_the_worker_goes_on(
    db_url: str, mqtt_url: str, topic_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that raises on one batch (as the NUL reader id once did, with CopyValueError)
    must not stop the worker — it would meet the same batch again after every restart. The
    bug is injected: the engine raises on any batch holding the tag DEAD."""
    service = EngineService(
        EngineConfig(
            database_url=db_url, mqtt_url=mqtt_url, topic_prefix=topic_prefix, shards=(0,),
            client_id=f"engine-{topic_prefix}", persistent_session=False,
        )
    )  # fmt: skip
    real_process = service.engine.process

    def buggy_process(prepared: PreparedBatch, *, alerts: bool = True) -> ProcessResult:
        if prepared.rows is not None and "DEAD" in prepared.rows.tag_id.tolist():
            raise RuntimeError("injected engine bug")
        return real_process(prepared, alerts=alerts)

    monkeypatch.setattr(service.engine, "process", buggy_process)
    now = time.time_ns() // 1000
    poison = _batch(1, now - 10_000_000, 1_000_000, ["DEAD", "BEEF", "CAFE"])
    good = _batch(2, now - 5_000_000, 1_000_000, [f"E2{i:06X}" for i in range(10)])
    stop = threading.Event()
    service.start()
    worker = threading.Thread(target=service.run, args=(stop,), daemon=True)
    try:
        deadline = time.monotonic() + 20
        while not service.connected.is_set():
            assert time.monotonic() < deadline, "never subscribed"
            time.sleep(0.05)  # waiting for the SUBACK
        worker.start()
        topic = reads_topic(0, f"{topic_prefix}/reads")
        _, port = mqtt_endpoint(mqtt_url)
        publish_twice(port, topic, encode_batch(poison))
        publish_twice(port, topic, encode_batch(good))
        deadline = time.monotonic() + 30
        while service.counters.messages_acked < 4:
            assert worker.is_alive(), "the worker stopped"
            assert time.monotonic() < deadline, service.counters
            time.sleep(0.05)  # the engine's counter is the condition
        assert worker.is_alive()
    finally:
        stop.set()
        if worker.is_alive():
            worker.join(20)
        service.close()
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT count(*) FROM reads").fetchone()
        reasons = [r[0] for r in conn.execute("SELECT reason FROM quarantine").fetchall()]
    assert stored == (10,)
    assert reasons == ["engine failed on the batch: RuntimeError: injected engine bug"] * 2
    assert service.counters.reads_quarantined == {"engine_error": 6}
