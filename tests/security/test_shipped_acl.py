"""The broker ACL the project ships lets every service do its job: here, reader heartbeats.

A private Mosquitto runs with ``deploy/mosquitto/tagtrail.acl.example`` exactly as shipped
(password file, no anonymous access). ``tagtrail engine`` records reader heartbeats with the
engine's own broker account; under the ACL shipped before, that account could not read
``status/#``, so Mosquitto silently withheld every status message and ``readers.last_heard_at``
was never written.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import psycopg
from broker_helpers import ACCOUNTS, secured_mosquitto
from paho.mqtt.enums import CallbackAPIVersion
from scenarios import line_city

from reader_gateway.health import ReaderHealth
from track_engine.reader_status import ReaderStatusRecorder

SHIPPED_ACL = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "tagtrail.acl.example"
PREFIX = "tagtrail/v1"  # the prefix the shipped file is written for


def test_shipped_acl_lets_the_engine_account_record_reader_heartbeats(db_url: str) -> None:
    line_city(db_url)  # readers R0 ... R5
    heard_s = float(int(time.time()) - 5)
    with secured_mosquitto(acl_text=SHIPPED_ACL.read_text()) as broker:
        recorder = ReaderStatusRecorder(
            database_url=db_url,
            mqtt_url=broker.url("engine-0"),
            topic_prefix=PREFIX,
            client_id="tagtrail-status-acl",
        )
        stop = threading.Event()
        writer = threading.Thread(target=recorder.run, args=(stop,))
        gateway = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-site1-acl")
        gateway.username_pw_set("gw-site1", ACCOUNTS["gw-site1"])
        try:
            recorder.start()
            writer.start()
            assert recorder.connected.wait(10), "the recorder never subscribed"
            gateway.connect("127.0.0.1", broker.port)
            gateway.loop_start()
            health = ReaderHealth("R3", "impinj-iot", frames=12, last_heard_s=heard_s)
            doc = health.document("online", "gw-site1")
            info = gateway.publish(
                f"{PREFIX}/status/readers/R3", orjson.dumps(doc), qos=1, retain=True
            )
            info.wait_for_publish(10)
            deadline = time.monotonic() + 10
            while recorder.recorded < 1 and time.monotonic() < deadline:
                time.sleep(0.05)  # the recorder writes on its own thread
            assert recorder.recorded == 1, "no heartbeat reached the recorder"
        finally:
            stop.set()
            if writer.is_alive():
                writer.join(10)
            recorder.close()
            gateway.loop_stop()
            gateway.disconnect()
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT last_heard_at FROM readers WHERE reader_id = 'R3'")
        assert row.fetchone() == (datetime.fromtimestamp(heard_s, tz=UTC),)
