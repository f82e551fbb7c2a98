"""Read times far from the engine's clock are quarantined, and no batch can wedge the engine.

Regression for the critical finding: one batch with reads dated 2000 and 2099 (a reader whose
clock was reset, or a forged batch published straight on the broker) made the engine create a
partition for every day in between, in the micro-batch's transaction: "out of shared memory",
retried for ever, nothing stored, other connections stuck on its locks. These tests run on
the suite's private PostgreSQL cluster, because on the old code they exhaust the server's
shared lock table — which on the machine's shared server would hit every other database too.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import paho.mqtt.client as mqtt
import psycopg
import pytest
from harness import PgCluster
from paho.mqtt.enums import CallbackAPIVersion

from reader_gateway.brokers import mqtt_endpoint
from reader_gateway.wire import batch_from_columns, encode_batch, reads_topic
from track_engine.consumer.config import EngineConfig
from track_engine.consumer.service import EngineService
from track_engine.pipeline import Engine

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]


def _us(when: datetime) -> int:
    return round(when.timestamp() * 1e6)


def _now_us() -> int:
    return time.time_ns() // 1000


def _wait(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling the condition itself


@pytest.fixture
def private_db(pg_cluster: PgCluster) -> str:
    """A migrated database on the suite's private cluster."""
    return pg_cluster.create_database(f"window_{uuid.uuid4().hex[:10]}")


@pytest.fixture
def engine_service(private_db: str, mqtt_url: str, topic_prefix: str) -> Iterator[EngineService]:
    """An engine worker with the default read window, running on a thread."""
    service = EngineService(
        EngineConfig(
            database_url=private_db, mqtt_url=mqtt_url, topic_prefix=topic_prefix, shards=(0,),
            client_id=f"engine-{topic_prefix}", persistent_session=False, gap_s=5.0,
        )
    )  # fmt: skip
    stop = threading.Event()
    service.start()
    _wait(service.connected.is_set, 20, "the engine's subscription")
    worker = threading.Thread(target=service.run, args=(stop,), daemon=True)
    worker.start()
    try:
        yield service
    finally:
        stop.set()
        worker.join(20)
        service.close()


def _publish(mqtt_url: str, topic: str, payloads: list[bytes]) -> None:
    host, port = mqtt_endpoint(mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect(host, port)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def _partitions(db_url: str, table: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass ORDER BY 1",
            (table,),
        ).fetchall()
    return [str(r[0]) for r in rows]


def test_batch_with_reads_dated_2000_and_2099_is_quarantined_and_city_keeps_flowing(
    engine_service: EngineService, private_db: str, mqtt_url: str, topic_prefix: str
) -> None:
    now = _now_us()
    far = [
        _us(datetime(2000, 1, 1, tzinfo=UTC)),  # a reader whose clock was reset
        _us(datetime(2001, 6, 1, tzinfo=UTC)),
        _us(datetime(2038, 1, 19, 3, 14, 7, tzinfo=UTC)),  # a 32-bit clock's last second
        _us(datetime(2099, 12, 31, tzinfo=UTC)),
    ]
    good = [now - 60_000_000 + i * 100_000 for i in range(20)]
    hostile = batch_from_columns(
        gateway_id="gw-forged", batch_seq=1, sent_at_us=now,
        reader_ids=["R-OLD", "R-OLD", "R-2038", "R-2038"] + ["R-CITY"] * 20,
        antenna=[1] * 24, tag=[f"E2{i:06X}" for i in range(24)], rssi_dbm=[-60.0] * 24,
        read_at_us=far + good, seq=list(range(24)),
    )  # fmt: skip
    city = batch_from_columns(
        gateway_id="gw-1", batch_seq=7, sent_at_us=now, reader_ids=["R-NEXT"] * 10,
        antenna=[2] * 10, tag=[f"E3{i:06X}" for i in range(10)], rssi_dbm=[-55.0] * 10,
        read_at_us=[now - 30_000_000 + i * 10_000 for i in range(10)], seq=list(range(10)),
    )  # fmt: skip
    topic = reads_topic(0, f"{topic_prefix}/reads")
    _publish(mqtt_url, topic, [encode_batch(hostile), encode_batch(city)])

    def stored() -> int:
        with psycopg.connect(private_db) as conn:
            row = conn.execute("SELECT count(*) FROM reads").fetchone()
        return int(row[0]) if row else 0

    _wait(lambda: stored() == 30, 30, "the in-window reads of both batches")
    with psycopg.connect(private_db) as conn:
        # Other connections are not kept waiting on the engine's locks.
        conn.execute("SET lock_timeout = '2s'")
        outside = conn.execute(
            "SELECT count(*) FROM reads WHERE read_at < now() - interval '1 day'"
        ).fetchone()
        reasons = conn.execute("SELECT reason FROM quarantine").fetchall()
    assert outside == (0,)
    assert len(reasons) == 1
    assert "2 reads older than" in reasons[0][0]
    assert "2 reads at or after" in reasons[0][0]
    assert "4 of 24 reads not stored" in reasons[0][0]
    assert engine_service.counters.reads_quarantined == {"too_old": 2, "too_far_ahead": 2}
    sample = engine_service.metrics.registry.get_sample_value
    assert sample("tagtrail_engine_reads_quarantined_total", {"reason": "too_old"}) == 2
    assert sample("tagtrail_engine_reads_quarantined_total", {"reason": "too_far_ahead"}) == 2
    # Only the partitions of days that hold a stored read and the ones housekeeping makes
    # ahead of the clock (partition_ahead_days = 3); none for 2000, 2001, 2038 or 2099.
    today = datetime.fromtimestamp(now / 1e6, tz=UTC).date()
    for table in ("reads", "passages"):
        days = [date.fromisoformat(p[-8:]) for p in _partitions(private_db, table)]
        assert days, table
        assert all(-1 <= (day - today).days <= 4 for day in days), (table, days)


def test_a_batch_creates_only_the_partitions_of_its_read_days(private_db: str) -> None:
    """Even with no window (the engine used as a library), a batch dated 2000 and 2099 makes
    two partitions per table, not the 36,500 days between them."""
    times = [_us(datetime(2000, 1, 1, 12, tzinfo=UTC)), _us(datetime(2099, 12, 31, 12, tzinfo=UTC))]
    batch = batch_from_columns(
        gateway_id="gw-lib", batch_seq=1, sent_at_us=times[0], reader_ids=["R1", "R2"],
        antenna=[1, 1], tag=["AB", "CD"], rssi_dbm=[-60.0, -60.0], read_at_us=times, seq=[1, 2],
    )  # fmt: skip
    with psycopg.connect(private_db) as conn:
        engine = Engine(conn, gap_s=5.0)
        result = engine.process([batch])
    assert result.reads_stored == 2
    assert _partitions(private_db, "reads") == ["reads_p20000101", "reads_p20991231"]
    assert _partitions(private_db, "passages") == ["passages_p20000101", "passages_p20991231"]


def test_a_reader_id_with_a_nul_is_refused_and_later_batches_still_stored(
    engine_service: EngineService, private_db: str, mqtt_url: str, topic_prefix: str
) -> None:
    """Found by the batch fuzzer: the refused id stayed in the kept reads' reader list, the
    engine learnt it, and its COPY of this and every later micro-batch raised (the worker
    stopped)."""
    now = _now_us()
    mixed = batch_from_columns(
        gateway_id="gw-1", batch_seq=1, sent_at_us=now, reader_ids=["R\x00", "R-OK", "R-OK"],
        antenna=[1, 1, 1], tag=["AA", "AB", "AC"], rssi_dbm=[-60.0] * 3,
        read_at_us=[now - 5_000_000, now - 4_000_000, now - 3_000_000], seq=[1, 2, 3],
    )  # fmt: skip
    later = batch_from_columns(
        gateway_id="gw-1", batch_seq=2, sent_at_us=now, reader_ids=["R-NEXT"] * 2,
        antenna=[1, 1], tag=["BA", "BB"], rssi_dbm=[-60.0] * 2,
        read_at_us=[now - 2_000_000, now - 1_000_000], seq=[4, 5],
    )  # fmt: skip
    topic = reads_topic(0, f"{topic_prefix}/reads")
    _publish(mqtt_url, topic, [encode_batch(mixed), encode_batch(later)])

    def stored() -> list[tuple[str, str]]:
        with psycopg.connect(private_db) as conn:
            rows = conn.execute("SELECT reader_id, tag_id FROM reads ORDER BY 2").fetchall()
        return [(str(r), str(t)) for r, t in rows]

    _wait(lambda: len(stored()) >= 4, 30, "the good reads of both batches")
    assert stored() == [("R-OK", "AB"), ("R-OK", "AC"), ("R-NEXT", "BA"), ("R-NEXT", "BB")]
    assert engine_service.counters.reads_quarantined == {"bad_reader_id": 1}
