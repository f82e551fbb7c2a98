"""The engine over the real Mosquitto and PostgreSQL: store, quarantine, alert, ack."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pandas as pd
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from api.registry import loaders as registry
from reader_gateway.brokers import mqtt_endpoint
from reader_gateway.wire import batch_from_columns, encode_batch, reads_topic
from track_engine.consumer.config import EngineConfig
from track_engine.consumer.service import EngineService
from track_engine.passages import fold_passages

T0_US = 1_764_396_000_000_000  # 2025-11-29T06:00:00Z
WATCHED = "E28011A100000000000000AA"


def _wait(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _client(url: str, client_id: str) -> mqtt.Client:
    host, port = mqtt_endpoint(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.connect(host, port)
    client.loop_start()
    return client


def _service(db_url: str, mqtt_url: str, topic_prefix: str, **config: Any) -> EngineService:
    """An engine on shard 0 with a clean session (tests leave nothing in the broker)."""
    return EngineService(
        EngineConfig(
            database_url=db_url,
            mqtt_url=mqtt_url,
            topic_prefix=topic_prefix,
            shards=(0,),
            client_id=f"engine-{topic_prefix}",
            persistent_session=False,
            # The batches here carry fixed read times from 2025, older than the default window.
            **{"read_max_age_s": None, **config},
        )
    )


def _watch(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        ids = registry.register_bikes(
            conn,
            [
                registry.Registration(
                    owner_name="Li Lei",
                    owner_phone="13800000000",
                    owner_id_number="110101199003074258",
                    brand="Yadea",
                    colour="red",
                    frame_number="FRAME0001",
                    plate="浙B12345",
                    tag_id=WATCHED,
                )
            ],
            registered_at=datetime(2025, 1, 1, tzinfo=UTC),
            id_hash_key=b"k" * 32,
        )
        registry.open_theft(
            conn,
            bike_id=ids["浙B12345"],
            stolen_at=datetime(2025, 11, 29, 5, tzinfo=UTC),
            reported_at=datetime(2025, 11, 29, 5, 10, tzinfo=UTC),
            place="estate gate",
            description="",
            case_number="C-1",
        )


def test_batches_stored_once_bad_ones_quarantined_watched_tags_alerted(
    db_url: str, mqtt_url: str, topic_prefix: str
) -> None:
    _watch(db_url)
    service = _service(db_url, mqtt_url, topic_prefix, gap_s=5.0)
    stop = threading.Event()
    alerts: list[dict[str, object]] = []
    listener = _client(mqtt_url, f"alerts-{topic_prefix}")
    listener.on_message = lambda _c, _u, m: alerts.append(orjson.loads(m.payload))
    listener.subscribe(f"{topic_prefix}/alerts/#", qos=1)
    service.start()
    _wait(service.connected.is_set)
    worker = threading.Thread(target=service.run, args=(stop,))
    worker.start()
    publisher = _client(mqtt_url, f"pub-{topic_prefix}")
    try:
        n = 30
        batch = batch_from_columns(
            gateway_id="gw-test",
            batch_seq=1,
            sent_at_us=T0_US,
            reader_ids=["R0001"] * n,
            antenna=[1] * n,
            tag=[WATCHED] * 10 + ["E2000000000000000000BBBB"] * 20,
            rssi_dbm=[-60.0] * n,
            read_at_us=[T0_US + i * 100_000 for i in range(n)],
            seq=list(range(n)),
        )
        topic = reads_topic(0, f"{topic_prefix}/reads")
        publisher.publish(topic, encode_batch(batch), qos=1).wait_for_publish(5)
        publisher.publish(topic, encode_batch(batch), qos=1).wait_for_publish(5)  # redelivery
        publisher.publish(topic, b'{"v": 1, "gateway_id": "broken"}', qos=1).wait_for_publish(5)
        _wait(
            lambda: service.counters.reads_received == 2 * n and service.counters.quarantined == 1
        )
        _wait(lambda: len(alerts) == 1)
    finally:
        stop.set()
        worker.join(10)
        service.flush()
        service.close()
        publisher.loop_stop()
        listener.loop_stop()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM reads").fetchone() == (n,)
        assert conn.execute("SELECT count(*) FROM passages").fetchone() == (2,)
        reason = conn.execute("SELECT reason FROM quarantine").fetchone()
        assert reason is not None
        assert "missing field" in reason[0]
        assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (1,)
    assert alerts[0]["tag_id"] == WATCHED
    assert alerts[0]["reader_id"] == "R0001"


def test_a_clean_stop_stores_every_open_passage(
    db_url: str, mqtt_url: str, topic_prefix: str
) -> None:
    # A gap longer than the test: no passage can close before the stop, by reads or clock.
    service = _service(db_url, mqtt_url, topic_prefix, gap_s=600.0)
    stop = threading.Event()
    service.start()
    _wait(service.connected.is_set)
    worker = threading.Thread(target=service.run, args=(stop,))
    worker.start()
    publisher = _client(mqtt_url, f"pub-{topic_prefix}")
    n = 40
    reads = {
        "reader_ids": ["R0001"] * 20 + ["R0002"] * 20,
        "tag": ["E2000000000000000000AAAA"] * 10 + ["E2000000000000000000BBBB"] * 30,
        "rssi_dbm": [-60.0 - (i % 7) for i in range(n)],
        "read_at_us": [T0_US + i * 100_000 for i in range(n)],
    }
    try:
        batch = batch_from_columns(
            gateway_id="gw-test", batch_seq=1, sent_at_us=T0_US, antenna=[1] * n,
            seq=list(range(n)), **reads,
        )  # fmt: skip
        topic = reads_topic(0, f"{topic_prefix}/reads")
        publisher.publish(topic, encode_batch(batch), qos=1).wait_for_publish(5)
        _wait(lambda: service.counters.reads_stored == n)
        with psycopg.connect(db_url) as conn:  # stored reads, every passage still open
            assert conn.execute("SELECT count(*) FROM passages").fetchone() == (0,)
    finally:
        stop.set()  # what SIGTERM does (tagtrail.runtime.run_until_interrupted)
        worker.join(10)
        service.close()
        publisher.loop_stop()
    want = fold_passages(
        pd.DataFrame(reads)
        .rename(columns={"reader_ids": "reader_id", "tag": "tag_id"})
        .assign(antenna=1),
        gap_s=600.0,
    )
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "SELECT tag_id, reader_id, read_count,"
            " (extract(epoch from closest_at) * 1000000)::bigint FROM passages ORDER BY 1, 2"
        ).fetchall()
    assert stored == [
        (r.tag_id, r.reader_id, r.read_count, r.closest_at_us)
        for r in want.sort_values(["tag_id", "reader_id"]).itertuples()
    ]
    assert service.counters.passages_stored == 3


def test_a_passage_the_database_refuses_on_an_idle_tick_is_stored_once_it_accepts(
    db_url: str, mqtt_url: str, topic_prefix: str
) -> None:
    # A refusal while storing what the clock closed (here a trigger) must neither stop the
    # worker nor lose the passage: it is stored at a later tick.
    with psycopg.connect(db_url) as conn:
        conn.execute(
            """CREATE FUNCTION refuse_passages() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'not now'; END $$;
               CREATE TRIGGER refuse BEFORE INSERT ON passages
                   FOR EACH ROW EXECUTE FUNCTION refuse_passages();"""
        )
    service = _service(db_url, mqtt_url, topic_prefix, gap_s=1.0, idle_skew_s=0.5)
    stop = threading.Event()
    service.start()
    _wait(service.connected.is_set)
    worker = threading.Thread(target=service.run, args=(stop,))
    worker.start()
    publisher = _client(mqtt_url, f"pub-{topic_prefix}")
    now_us = time.time_ns() // 1000
    try:
        batch = batch_from_columns(
            gateway_id="gw-test", batch_seq=1, sent_at_us=now_us, reader_ids=["R0001"] * 5,
            antenna=[1] * 5, tag=["E2000000000000000000AAAA"] * 5, rssi_dbm=[-60.0] * 5,
            read_at_us=[now_us + i * 100_000 for i in range(5)], seq=list(range(5)),
        )  # fmt: skip
        publisher.publish(reads_topic(0, f"{topic_prefix}/reads"), encode_batch(batch), qos=1)
        _wait(lambda: service.counters.reads_stored == 5)
        time.sleep(4.0)  # the gap and the skew have passed: ticks tried and were refused
        assert worker.is_alive()
        with psycopg.connect(db_url) as conn:
            assert conn.execute("SELECT count(*) FROM passages").fetchone() == (0,)
            conn.execute("DROP TRIGGER refuse ON passages")
        _wait(lambda: service.counters.passages_stored == 1, timeout_s=15)
    finally:
        stop.set()
        worker.join(10)
        service.close()
        publisher.loop_stop()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT read_count FROM passages").fetchall() == [(5,)]


def test_a_worker_behind_holds_a_bounded_inbox_and_the_broker_keeps_the_rest(
    db_url: str, mqtt_url: str, topic_prefix: str
) -> None:
    """The backlog of an engine that is behind waits in the broker, not in the engine's memory:
    paho's thread stops taking messages when the inbox is full; none is lost or stored twice."""
    service = _service(db_url, mqtt_url, topic_prefix, max_batch_messages=2, max_inbox_messages=3)
    stop = threading.Event()
    service.start()
    _wait(service.connected.is_set)
    publisher = _client(mqtt_url, f"pub-{topic_prefix}")
    topic = reads_topic(0, f"{topic_prefix}/reads")
    batches, per_batch = 20, 5
    worker = threading.Thread(target=service.run, args=(stop,))
    try:
        for b in range(batches):
            batch = batch_from_columns(
                gateway_id="gw-test",
                batch_seq=b,
                sent_at_us=T0_US,
                reader_ids=["R0001"] * per_batch,
                antenna=[1] * per_batch,
                tag=[f"E2000000000000000000{b:04X}"] * per_batch,
                rssi_dbm=[-60.0] * per_batch,
                read_at_us=[T0_US + (b * per_batch + i) * 100_000 for i in range(per_batch)],
                seq=list(range(b * per_batch, (b + 1) * per_batch)),
            )
            publisher.publish(topic, encode_batch(batch), qos=1).wait_for_publish(5)
        _wait(lambda: service.inbox_messages == 3)
        time.sleep(0.5)  # more would have arrived by now if paho's thread took them
        assert service.inbox_messages == 3
        assert service.counters.reads_received == 0
        worker.start()  # the worker catches up: the broker sends the rest as room appears
        _wait(lambda: service.counters.reads_stored == batches * per_batch)
    finally:
        stop.set()
        if worker.is_alive():
            worker.join(10)
        service.close()
        publisher.loop_stop()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM reads").fetchone() == (batches * per_batch,)


def test_closing_while_the_inbox_is_full_does_not_hang(
    db_url: str, mqtt_url: str, topic_prefix: str
) -> None:
    """paho's thread, waiting for room in a full inbox, gives up when the service closes; what
    it held goes unacknowledged, so the broker delivers it again."""
    service = _service(db_url, mqtt_url, topic_prefix, max_inbox_messages=1)
    service.start()
    _wait(service.connected.is_set)
    publisher = _client(mqtt_url, f"pub-{topic_prefix}")
    try:
        batch = batch_from_columns(
            gateway_id="gw-test", batch_seq=1, sent_at_us=T0_US, reader_ids=["R0001"],
            antenna=[1], tag=["E2000000000000000000BBBB"], rssi_dbm=[-60.0],
            read_at_us=[T0_US], seq=[0],
        )  # fmt: skip
        for _ in range(3):
            publisher.publish(reads_topic(0, f"{topic_prefix}/reads"), encode_batch(batch), qos=1)
        _wait(lambda: service.inbox_messages == 1)
        started = time.monotonic()
        service.close()
        assert time.monotonic() - started < 5
    finally:
        publisher.loop_stop()
