"""Reader heartbeats from the gateways' retained status topics reach ``readers.last_heard_at``."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import orjson
import paho.mqtt.client as mqtt
import pandas as pd
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from api.registry import loaders as registry
from reader_gateway.brokers import mqtt_endpoint
from track_engine.reader_status import Heartbeat, ReaderStatusRecorder, parse_status

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def _add_reader(conn: psycopg.Connection, reader_id: str) -> None:
    network = registry.store_road_network(
        conn,
        name="n",
        source=f"test:{reader_id}",
        origin_lat=30.0,
        origin_lon=121.0,
        nodes=pd.DataFrame(
            {
                "node_id": [0],
                "lon": [121.0],
                "lat": [30.0],
                "x_m": [0.0],
                "y_m": [0.0],
                "kind": ["junction"],
            }
        ),
        edges=pd.DataFrame(
            {"edge_id": [], "src": [], "dst": [], "length_m": [], "road_class": [], "oneway": []}
        ),
    )
    registry.upsert_readers(
        conn,
        pd.DataFrame(
            {
                "reader_id": [reader_id],
                "protocol": ["r2000"],
                "lon": [121.0],
                "lat": [30.0],
                "x_m": [0.0],
                "y_m": [0.0],
                "node_id": [0],
                "antennas": [1],
                "antenna_headings": [[0.0]],
                "clock_offset_ms": [0.0],
                "miss_rate": [0.3],
            }
        ),
        network_id=network,
    )


def test_parse_status_accepts_gateway_documents_only() -> None:
    doc = {"reader_id": "R1", "status": "online", "last_heard_s": T0.timestamp()}
    assert parse_status(orjson.dumps(doc)) == Heartbeat("R1", T0, status="online", status_at=T0)
    judged = {**doc, "gateway_id": "gw-1", "at_s": T0.timestamp() + 5, "last_heard_s": None}
    judged["status"] = "never_heard"
    assert parse_status(orjson.dumps(judged)) == Heartbeat(
        "R1", None, status="never_heard", status_at=T0 + timedelta(seconds=5), gateway_id="gw-1"
    )
    assert parse_status(orjson.dumps({**doc, "status": "asleep", "last_heard_s": None})) is None
    assert parse_status(b"not json") is None
    assert parse_status(orjson.dumps({"reader_id": "R1", "last_heard_s": None})) is None
    assert parse_status(orjson.dumps([1, 2])) is None


def test_heartbeats_move_last_heard_forward_only(
    db_url: str, mqtt_url: str, topic_prefix: str
) -> None:
    with psycopg.connect(db_url) as conn:
        _add_reader(conn, "R1")
    recorder = ReaderStatusRecorder(
        database_url=db_url,
        mqtt_url=mqtt_url,
        topic_prefix=topic_prefix,
        client_id=f"status-{topic_prefix}",
    )
    stop = threading.Event()
    recorder.start()
    assert recorder.connected.wait(10)
    worker = threading.Thread(target=recorder.run, args=(stop,))
    worker.start()
    host, port = mqtt_endpoint(mqtt_url)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gw-{topic_prefix}")
    pub.connect(host, port)
    pub.loop_start()
    try:
        topic = f"{topic_prefix}/status/readers/R1"
        for at in (T0, T0 - timedelta(minutes=5)):  # a stale document must not win
            doc = {"reader_id": "R1", "status": "online", "last_heard_s": at.timestamp()}
            pub.publish(topic, orjson.dumps(doc), qos=1).wait_for_publish(5)
        unknown = {"reader_id": "R404", "last_heard_s": T0.timestamp()}
        pub.publish(f"{topic_prefix}/status/readers/R404", orjson.dumps(unknown), qos=1)
        deadline = time.monotonic() + 10
        while recorder.recorded < 1:
            assert time.monotonic() < deadline, "heartbeat not recorded"
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(10)
        recorder.close()
        pub.loop_stop()
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT last_heard_at FROM readers").fetchall() == [(T0,)]
